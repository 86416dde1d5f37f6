from odoo import fields, models


class MailingSmsAudienceLine(models.TransientModel):
    _name = "mailing.sms.audience.line"
    _description = "SMS mailing recipients per country"
    _order = "count desc, country_code"

    audience_id = fields.Many2one("mailing.sms.audience", required=True, ondelete="cascade")
    country_code = fields.Char("Code", readonly=True)
    country_id = fields.Many2one("res.country", readonly=True)
    count = fields.Integer("Recipients", readonly=True)
    parts = fields.Integer("SMS parts", readonly=True, help="Parts sent to these recipients, all together.")
    price = fields.Float("Credits per part", readonly=True, digits=(16, 4))
    cost = fields.Float("Credits", readonly=True, digits=(16, 2))
