from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..tools.providers.jsonrpc import SmsGatewayApi

ADMIN_GROUP = "sms_marketing_ext.group_sms_marketing_admin"


class SmsGatewayJsonrpc(models.Model):
    """Provider ``jsonrpc``: any gateway speaking the project's IAP-style JSON-RPC protocol
    (``docs/gateway-protocol.md``): base URL and account token, price list, idempotent send by
    uuid, status query, signed delivery reports and inbound messages."""

    _inherit = "sms.gateway"  # one file per provider on purpose: pylint: disable=consider-merging-classes-inherited

    provider = fields.Selection(
        selection_add=[("jsonrpc", "IAP-style JSON-RPC gateway")], ondelete={"jsonrpc": "cascade"}
    )
    account_token = fields.Char(
        copy=False, groups=ADMIN_GROUP, help="Secret token of the account at the gateway, sent with every call."
    )

    @api.constrains("provider", "base_url")
    def _check_base_url(self):
        for gateway in self.filtered(lambda g: g.provider == "jsonrpc"):
            if not (gateway.base_url or "").startswith(("http://", "https://")):
                raise ValidationError(
                    _("Gateway %s needs a base URL starting with http:// or https://.", gateway.name)
                )

    def _get_api(self):
        if self.provider != "jsonrpc":
            return super()._get_api()
        gateway_sudo = self.sudo()
        return SmsGatewayApi(gateway_sudo.base_url, gateway_sudo.account_token, timeout=self.timeout or 10)

    def _get_webhook_urls(self):
        if self.provider != "jsonrpc":
            return super()._get_webhook_urls()
        if not self.id:
            return []
        return [
            {"kind": "status", "label": _("Delivery reports"), "url": self._webhook_url("status"),
             "note": _("Sent with each message: a gateway following the protocol needs no setting for reports.")},
            {"kind": "inbound", "label": _("Inbound messages"), "url": self._webhook_url("inbound"),
             "note": _("Give the inbound URL and the webhook secret to the gateway (its account's inbound URL) "
                       "so that replies such as STOP reach Odoo.")},
        ]

    def _get_capabilities(self):
        if self.provider != "jsonrpc":
            return super()._get_capabilities()
        return SmsGatewayApi.CAPABILITIES

    def _endpoint_name(self):
        if self.provider != "jsonrpc":
            return super()._endpoint_name()
        return self.base_url
