from odoo import fields, models


class PhoneBlacklistExport(models.TransientModel):
    """A CSV export of blacklist entries, kept until the transient records are cleaned up: the
    download link of the blacklist's Export action points to it."""

    _name = "phone.blacklist.export"
    _description = "Blacklisted phone numbers export"

    data = fields.Binary("CSV file", attachment=False, readonly=True)
    filename = fields.Char(readonly=True)
