from urllib.parse import urlsplit

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..tools import sms_quiet_hours


class ResCompany(models.Model):
    _inherit = "res.company"

    sms_max_segments = fields.Integer(
        "Maximum SMS parts",
        default=6,
        help="A mailing whose message needs more parts per recipient cannot be sent or scheduled.",
    )
    sms_short_link_base = fields.Char(
        "Short link domain",
        help="Base URL of tracked links in SMS, such as https://go.example.com (it must reach this "
        "Odoo). Shorter means fewer characters per SMS. Empty: the website's base URL.",
    )

    sms_frequency_cap_hours = fields.Integer(
        "Frequency cap (hours)",
        default=0,
        help="Numbers that received a marketing SMS in the last N hours are left out of new mailings. "
        "0: no cap.",
    )

    sms_quiet_hours = fields.Boolean(
        "Quiet hours",
        help="Send marketing SMS only inside a daily window of the recipient's local time (from the number's "
        "country and time zone); messages outside it wait for the window.",
    )
    sms_send_window_start = fields.Float("Send from", default=8.0)
    sms_send_window_end = fields.Float("Send until", default=21.0)

    @api.constrains("sms_send_window_start", "sms_send_window_end")
    def _check_sms_send_window(self):
        for company in self:
            if sms_quiet_hours.window_error(company.sms_send_window_start, company.sms_send_window_end):
                raise ValidationError(_("The send window runs between two different hours of the day (0 to 24)."))

    @api.constrains("sms_max_segments")
    def _check_sms_max_segments(self):
        for company in self:
            if not 1 <= company.sms_max_segments <= 255:
                raise ValidationError(_("The maximum number of SMS parts is between 1 and 255."))

    @api.constrains("sms_frequency_cap_hours")
    def _check_sms_frequency_cap_hours(self):
        for company in self:
            if not 0 <= company.sms_frequency_cap_hours <= 24 * 365:
                raise ValidationError(_("The frequency cap is between 0 (no cap) and 8760 hours (a year)."))

    @api.constrains("sms_short_link_base")
    def _check_sms_short_link_base(self):
        for company in self.filtered("sms_short_link_base"):
            parts = urlsplit(company.sms_short_link_base)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise ValidationError(
                    _("The short link domain must be a web address such as https://go.example.com, not %s.",
                      company.sms_short_link_base)
                )

    def _sms_short_link_base(self):
        self.ensure_one()
        return (self.sms_short_link_base or self.get_base_url()).rstrip("/")
