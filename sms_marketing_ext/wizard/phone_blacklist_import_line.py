from odoo import fields, models


class PhoneBlacklistImportLine(models.TransientModel):
    """A line of a blacklist CSV that was not imported, and why."""

    _name = "phone.blacklist.import.line"
    _description = "Rejected line of a blacklist import"
    _order = "line"

    import_id = fields.Many2one("phone.blacklist.import", required=True, ondelete="cascade")
    line = fields.Integer(readonly=True)
    value = fields.Char(readonly=True)
    reason = fields.Char(readonly=True)
