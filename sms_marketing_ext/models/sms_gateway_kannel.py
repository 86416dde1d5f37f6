from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..tools.providers.kannel import DLR_MASK, KannelClient

ADMIN_GROUP = "sms_marketing_ext.group_sms_marketing_admin"


class SmsGatewayKannel(models.Model):
    """Provider ``kannel``: the open-source gateway Kannel in front of an operator's SMSC (SMPP,
    EMI/UCP, HTTP). Messages go through smsbox's sendsms interface; delivery reports and inbound
    replies come back to our routes with the gateway's webhook secret in the URL (Kannel cannot
    sign). Kannel has no balance or price API: this record's credit budget and local prices are
    used for the credit check."""

    _inherit = "sms.gateway"  # one file per provider on purpose: pylint: disable=consider-merging-classes-inherited

    provider = fields.Selection(selection_add=[("kannel", "Kannel")], ondelete={"kannel": "cascade"})
    kannel_sendsms_url = fields.Char(
        "Kannel sendsms URL",
        tracking=True,
        help="smsbox's sendsms interface, e.g. http://kannel.example.com:13013 (/cgi-bin/sendsms is added).",
    )
    kannel_username = fields.Char("Kannel user", tracking=True, help="A sendsms-user of smsbox.")
    kannel_password = fields.Char("Kannel password", copy=False, groups=ADMIN_GROUP)
    kannel_smsc = fields.Char(
        "SMSC route", tracking=True, help="smsc-id the messages are routed to; empty: Kannel's own routing."
    )
    kannel_validity = fields.Integer(
        "Validity (minutes)", default=0, tracking=True,
        help="How long the SMSC keeps trying to deliver; 0: the SMSC's default.",
    )
    kannel_dlr_url = fields.Char("Kannel delivery report URL", compute="_compute_kannel_urls", groups=ADMIN_GROUP)
    kannel_inbound_url = fields.Char("Kannel inbound URL", compute="_compute_kannel_urls", groups=ADMIN_GROUP)
    kannel_service_config = fields.Text(
        "Kannel sms-service", compute="_compute_kannel_urls", groups=ADMIN_GROUP,
        help="The sms-service group to add to kannel.conf so that replies (STOP, START) reach Odoo.",
    )

    @api.depends("provider", "webhook_secret")
    def _compute_kannel_urls(self):
        for gateway in self:
            if gateway.provider != "kannel" or not gateway.id:
                gateway.kannel_dlr_url = gateway.kannel_inbound_url = gateway.kannel_service_config = False
                continue
            urls = {entry["kind"]: entry["url"] for entry in gateway._get_webhook_urls()}
            gateway.kannel_dlr_url = urls["status"]
            gateway.kannel_inbound_url = urls["inbound"]
            gateway.kannel_service_config = (
                "group = sms-service\n"
                "keyword = default\n"
                "catch-all = true\n"
                "max-messages = 0\n"
                f'get-url = "{gateway.kannel_inbound_url}&from=%p&to=%P&text=%a&at=%T"\n'
            )

    @api.constrains("provider", "kannel_sendsms_url", "kannel_validity")
    def _check_kannel(self):
        for gateway in self.filtered(lambda g: g.provider == "kannel"):
            if not (gateway.kannel_sendsms_url or "").startswith(("http://", "https://")):
                raise ValidationError(
                    _("Gateway %s needs Kannel's sendsms URL, starting with http:// or https://.", gateway.name)
                )
            if gateway.kannel_validity < 0:
                raise ValidationError(_("The validity is a number of minutes, 0 for the SMSC's default."))

    def _kannel_callback_url(self, kind):
        """Our route for Kannel's ``kind`` callbacks ('dlr' or 'inbound'), with the secret."""
        self.ensure_one()
        base_url = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "").rstrip("/")
        return f"{base_url}/sms_marketing_ext/kannel/{self.id}/{kind}?secret={self.sudo().webhook_secret}"

    def _get_webhook_urls(self):
        # Kannel cannot sign: its URLs carry the secret, shown in the admin-only Kannel callbacks tab.
        if self.provider != "kannel":
            return super()._get_webhook_urls()
        if not self.id:
            return []
        return [
            {"kind": "status", "label": _("Delivery reports (dlr-url)"), "url": self._kannel_callback_url("dlr"),
             "secret": True, "note": _("Sent with each message as Kannel's dlr-url: nothing to configure.")},
            {"kind": "inbound", "label": _("Replies (sms-service get-url)"),
             "url": self._kannel_callback_url("inbound"), "secret": True,
             "note": _("Add the sms-service group to kannel.conf.")},
        ]

    def _get_api(self):
        if self.provider != "kannel":
            return super()._get_api()
        gateway_sudo = self.sudo()
        return KannelClient(
            gateway_sudo.kannel_sendsms_url, gateway_sudo.kannel_username, gateway_sudo.kannel_password,
            smsc=gateway_sudo.kannel_smsc, validity=gateway_sudo.kannel_validity, dlr_mask=DLR_MASK,
            timeout=self.timeout or 10,
        )

    def _get_capabilities(self):
        if self.provider != "kannel":
            return super()._get_capabilities()
        return KannelClient.CAPABILITIES

    def _endpoint_name(self):
        if self.provider != "kannel":
            return super()._endpoint_name()
        return self.kannel_sendsms_url

    def _report_url(self):
        # Kannel calls the dlr-url given with each message: our route, with the secret.
        if self.provider != "kannel":
            return super()._report_url()
        return self._kannel_callback_url("dlr")
