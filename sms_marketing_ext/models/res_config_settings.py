from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    sms_max_segments = fields.Integer(related="company_id.sms_max_segments", readonly=False)
    sms_short_link_base = fields.Char(related="company_id.sms_short_link_base", readonly=False)
    sms_frequency_cap_hours = fields.Integer(related="company_id.sms_frequency_cap_hours", readonly=False)
