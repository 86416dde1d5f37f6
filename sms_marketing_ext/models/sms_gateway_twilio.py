import re

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..tools.providers.base import GatewayAccessError
from ..tools.providers.twilio import (
    ACCOUNT_SID_RE,
    API_BASE,
    API_KEY_SID_RE,
    MESSAGING_SERVICE_SID_RE,
    PRICING_BASE,
    TwilioClient,
)

ADMIN_GROUP = "sms_marketing_ext.group_sms_marketing_admin"
COUNTRY_LIST_RE = re.compile(r"^\s*[A-Za-z]{2}(\s*[,; ]\s*[A-Za-z]{2})*\s*$")


class SmsGatewayTwilio(models.Model):
    """Provider ``twilio``: Twilio's REST API (or a service speaking it at another base URL).
    Messages go through Messages.json with a status callback to our route; the balance comes from
    Balance.json and the prices from the Pricing API. Status callbacks and inbound messages are
    signed by Twilio with the account's auth token (``X-Twilio-Signature``) over the exact public
    URL it called: ours is built from :attr:`twilio_callback_base_url`, which must be the address
    Twilio sees (behind a proxy, the public one)."""

    _inherit = "sms.gateway"  # one file per provider on purpose: pylint: disable=consider-merging-classes-inherited

    provider = fields.Selection(selection_add=[("twilio", "Twilio")], ondelete={"twilio": "cascade"})
    twilio_api_base = fields.Char(
        "Twilio API base URL", default=API_BASE, tracking=True,
        help="Where Messages.json and Balance.json live; another URL for a Twilio-compatible service.",
    )
    twilio_pricing_base = fields.Char(
        "Twilio Pricing API base URL", default=PRICING_BASE, tracking=True,
        help="Where the Pricing API (/v1/Messaging/Countries) lives.",
    )
    twilio_account_sid = fields.Char("Account SID", tracking=True, help="AC followed by 32 hexadecimal characters.")
    twilio_auth_token = fields.Char(
        "Auth token", copy=False, groups=ADMIN_GROUP,
        help="The account's auth token: Twilio signs its callbacks with it, and it authenticates our calls "
        "unless an API key is set.",
    )
    twilio_api_key_sid = fields.Char(
        "API key SID", tracking=True,
        help="Optional: SK... An API key authenticates our calls instead of the auth token.",
    )
    twilio_api_key_secret = fields.Char("API key secret", copy=False, groups=ADMIN_GROUP)
    twilio_from = fields.Char(
        "From", tracking=True,
        help="The Twilio number (E.164) or alphanumeric sender messages are sent from when the mailing's sender "
        "does not say; not used with a Messaging Service.",
    )
    twilio_messaging_service_sid = fields.Char(
        "Messaging Service SID", tracking=True,
        help="Optional: MG... Twilio then picks the sending number from the service's pool.",
    )
    twilio_price_countries = fields.Char(
        "Priced countries", tracking=True,
        help="ISO codes of the countries whose prices are read from the Pricing API, e.g. FR, BE, US.",
    )
    twilio_callback_base_url = fields.Char(
        "Public callback base URL", tracking=True,
        help="The address Twilio reaches Odoo at, e.g. https://erp.example.com; empty: the web.base.url parameter. "
        "Signatures are checked against it, so it must be exactly what Twilio calls.",
    )
    twilio_status_url = fields.Char("Twilio status callback URL", compute="_compute_twilio_urls")
    twilio_inbound_url = fields.Char("Twilio inbound message URL", compute="_compute_twilio_urls")

    @api.depends("provider", "twilio_callback_base_url")
    def _compute_twilio_urls(self):
        for gateway in self:
            urls = {entry["kind"]: entry["url"] for entry in gateway._get_webhook_urls()} \
                if gateway.provider == "twilio" else {}
            gateway.twilio_status_url = urls.get("status", False)
            gateway.twilio_inbound_url = urls.get("inbound", False)

    @api.depends("twilio_callback_base_url")
    def _compute_webhook_urls(self):
        # The generic Callbacks tab: Twilio's URLs follow its public callback base URL.
        return super()._compute_webhook_urls()

    def _get_webhook_urls(self):
        # Twilio signs its calls (X-Twilio-Signature): its URLs carry no secret, any user of the form sees them.
        if self.provider != "twilio":
            return super()._get_webhook_urls()
        if not self.id:
            return []
        return [
            {"kind": "status", "label": _("Status callbacks"), "url": self._twilio_callback_url("status"),
             "note": _("Twilio gets the status callback URL with each message (StatusCallback): nothing to "
                       "configure.")},
            {"kind": "inbound", "label": _("Incoming messages"), "url": self._twilio_callback_url("inbound"),
             "note": _('Paste the inbound URL as "A message comes in" (HTTP POST) of your Twilio number or Messaging '
                       "Service, so that replies such as STOP reach Odoo. Twilio signs both with the auth token.")},
        ]

    @api.constrains("provider", "twilio_api_base", "twilio_pricing_base", "twilio_account_sid", "twilio_api_key_sid",
                    "twilio_messaging_service_sid", "twilio_price_countries", "twilio_callback_base_url")
    def _check_twilio(self):
        for gateway in self.filtered(lambda g: g.provider == "twilio"):
            for url in (gateway.twilio_api_base, gateway.twilio_pricing_base):
                if not (url or "").startswith(("http://", "https://")):
                    raise ValidationError(_("Gateway %s: the Twilio API URLs start with http:// or https://.",
                                            gateway.name))
            if gateway.twilio_callback_base_url and not gateway.twilio_callback_base_url.startswith(
                    ("http://", "https://")):
                raise ValidationError(_("The public callback base URL starts with http:// or https://."))
            if not ACCOUNT_SID_RE.match(gateway.twilio_account_sid or ""):
                raise ValidationError(_("The Account SID is AC followed by 32 hexadecimal characters (see the "
                                        "Twilio console)."))
            if gateway.twilio_api_key_sid and not API_KEY_SID_RE.match(gateway.twilio_api_key_sid):
                raise ValidationError(_("The API key SID is SK followed by 32 hexadecimal characters."))
            if gateway.twilio_messaging_service_sid and not MESSAGING_SERVICE_SID_RE.match(
                    gateway.twilio_messaging_service_sid):
                raise ValidationError(_("The Messaging Service SID is MG followed by 32 hexadecimal characters."))
            if gateway.twilio_price_countries and not COUNTRY_LIST_RE.match(gateway.twilio_price_countries):
                raise ValidationError(_("Priced countries: two-letter ISO codes separated by commas, e.g. FR, BE."))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._twilio_clean_vals(vals)
        return super().create(vals_list)

    def write(self, vals):
        return super().write(self._twilio_clean_vals(dict(vals)))

    @staticmethod
    def _twilio_clean_vals(vals):
        for name in ("twilio_api_base", "twilio_pricing_base", "twilio_callback_base_url"):
            if vals.get(name):
                vals[name] = vals[name].strip().rstrip("/")
        for name in ("twilio_account_sid", "twilio_api_key_sid", "twilio_messaging_service_sid", "twilio_from"):
            if vals.get(name):
                vals[name] = vals[name].strip()
        return vals

    def _twilio_price_country_codes(self):
        codes = re.findall(r"[A-Za-z]{2}", self.twilio_price_countries or "")
        if not codes and self.company_id.country_id:
            codes = [self.company_id.country_id.code]
        return sorted({code.upper() for code in codes})

    def _twilio_callback_url(self, kind):
        """The public URL of our ``kind`` route ('status' or 'inbound') as Twilio calls it."""
        self.ensure_one()
        base_url = self.twilio_callback_base_url or self.env["ir.config_parameter"].sudo().get_param(
            "web.base.url", "")
        return f"{base_url.rstrip('/')}/sms_marketing_ext/twilio/{self.id}/{kind}"

    def _get_api(self):
        if self.provider != "twilio":
            return super()._get_api()
        gateway = self.sudo()
        if gateway.twilio_api_key_sid:
            username, password = gateway.twilio_api_key_sid, gateway.twilio_api_key_secret
        else:
            username, password = gateway.twilio_account_sid, gateway.twilio_auth_token
        return TwilioClient(
            gateway.twilio_account_sid, username, password, api_base=gateway.twilio_api_base or API_BASE,
            pricing_base=gateway.twilio_pricing_base or PRICING_BASE, sender=gateway.twilio_from,
            messaging_service_sid=gateway.twilio_messaging_service_sid,
            price_countries=gateway._twilio_price_country_codes(), timeout=self.timeout or 10,
        )

    def _get_capabilities(self):
        if self.provider != "twilio":
            return super()._get_capabilities()
        return TwilioClient.CAPABILITIES

    def _endpoint_name(self):
        if self.provider != "twilio":
            return super()._endpoint_name()
        return _("Twilio (%s)", self.twilio_api_base or API_BASE)

    def _report_url(self):
        if self.provider != "twilio":
            return super()._report_url()
        return self._twilio_callback_url("status")

    def _error_message(self, error):
        if self.provider == "twilio" and isinstance(error, GatewayAccessError):
            return _(
                "Twilio refused the credentials of gateway %(name)s: check the Account SID and the auth token "
                "(or the API key SID and secret) in the Twilio console. (%(detail)s)",
                name=self.name, detail=error.message,
            )
        return super()._error_message(error)
