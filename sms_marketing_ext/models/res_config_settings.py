from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    sms_max_segments = fields.Integer(related="company_id.sms_max_segments", readonly=False)
    sms_short_link_base = fields.Char(related="company_id.sms_short_link_base", readonly=False)
    sms_frequency_cap_hours = fields.Integer(related="company_id.sms_frequency_cap_hours", readonly=False)
    sms_quiet_hours = fields.Boolean(related="company_id.sms_quiet_hours", readonly=False)
    sms_send_window_start = fields.Float(related="company_id.sms_send_window_start", readonly=False)
    sms_send_window_end = fields.Float(related="company_id.sms_send_window_end", readonly=False)
