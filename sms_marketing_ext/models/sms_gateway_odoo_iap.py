"""Provider ``odoo_iap``: stock Odoo IAP behind the providers' interface
(:class:`~..tools.providers.base.SmsProvider`). Its client calls stock's IAP client and reads
``iap.account``, so it lives on the Odoo side; what it declares and the mapping of IAP's states are
pure (``tools/providers/odoo_iap.py``)."""

from odoo import _, fields, models
from odoo.exceptions import AccessError, UserError

from odoo.addons.iap.tools.iap_tools import InsufficientCreditError
from odoo.addons.sms.tools.sms_api import SmsApi

from ..tools.providers import odoo_iap
from ..tools.providers.base import (
    GatewayAccessError,
    GatewayError,
    GatewayInsufficientCreditError,
    GatewayTransientError,
    SmsProvider,
    connection_refused,
    validate_messages,
)
from ..tools.providers.odoo_iap import iap_state_to_protocol


class SmsGatewayOdooIap(models.Model):
    """Provider ``odoo_iap``: stock Odoo IAP, its credits and its delivery reports."""

    _inherit = "sms.gateway"  # one file per provider on purpose: pylint: disable=consider-merging-classes-inherited

    provider = fields.Selection(selection_add=[("odoo_iap", "Odoo IAP")], ondelete={"odoo_iap": "cascade"})

    def _get_api(self):
        if self.provider != "odoo_iap":
            return super()._get_api()
        return OdooIapSmsApi(self.env, timeout=self.timeout)

    def _get_webhook_urls(self):
        if self.provider != "odoo_iap":
            return super()._get_webhook_urls()
        base_url = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "").rstrip("/")
        return [
            {"kind": "status", "label": _("Delivery reports"), "url": f"{base_url}/sms/status",
             "note": _("Odoo IAP gets this URL (stock's /sms/status) with each message: nothing to copy. "
                       "Odoo IAP forwards no replies.")},
        ]

    def _get_capabilities(self):
        if self.provider != "odoo_iap":
            return super()._get_capabilities()
        return OdooIapSmsApi.CAPABILITIES


class OdooIapSmsApi(SmsProvider):
    """Stock Odoo IAP (service ``sms``) with the providers' interface.

    Balance comes from the ``iap.account`` of service ``sms``; sending goes through stock
    ``SmsApi._send_sms_batch``. IAP has no price list, sender ids or message classes here, and its
    delivery reports use stock's own route and format, so ``webhook_url`` is not forwarded.
    """

    CODE = odoo_iap.CODE
    CAPABILITIES = odoo_iap.CAPABILITIES

    def __init__(self, env, timeout=10):
        super().__init__(timeout=timeout)
        self.env = env

    def balance(self):
        """Return the IAP credits of service ``sms``."""
        balance = self.env["iap.account"].sudo().get_credits("sms")
        if balance == -1:  # get_credits' way of saying the IAP call failed (bad token, unreachable)
            raise GatewayAccessError(message="Odoo IAP refused the balance request or could not be reached")
        return float(balance or 0.0)

    def prices(self):
        """IAP publishes no price list: no country price and a 0 default."""
        return {"default": 0.0, "countries": {}}

    def send(self, messages, webhook_url=None):
        """Send through stock IAP; return ``{"uuid", "state", "credits", "failure_type"}`` per message."""
        messages = validate_messages(messages)
        if not messages:
            return []
        by_content = {}
        for message in messages:
            by_content.setdefault(message["content"], []).append(
                {"uuid": message["uuid"], "number": message["number"]}
            )
        iap_batch = [{"content": content, "numbers": numbers} for content, numbers in by_content.items()]
        try:
            # IAP posts its delivery reports to stock's route, in its own format (the addon extends
            # that route to update our traces), not to the protocol's webhook_url.
            reports_url = self.env["sms.sms"].get_base_url().rstrip("/") + "/sms/status"
            response = SmsApi(self.env)._send_sms_batch(iap_batch, delivery_reports_url=reports_url)
        except InsufficientCreditError as exc:
            raise GatewayInsufficientCreditError(message=str(exc)) from exc
        except AccessError as exc:
            if getattr(exc, "data", None):  # a JSON-RPC AccessError answered by IAP: bad token
                raise GatewayAccessError(message=str(exc), data=exc.data) from exc
            # iap_jsonrpc turns connection errors, timeouts and HTTP errors into bare AccessErrors;
            # only a refused connection (its context) is known to have sent nothing.
            refused = exc.__context__ is not None and connection_refused(exc.__context__)
            raise GatewayTransientError(str(exc), reason="unreachable", maybe_sent=not refused) from exc
        except UserError as exc:
            raise GatewayError("UserError", str(exc)) from exc
        return self._results(messages, response or [])

    def _results(self, messages, response):
        failure_types = self.env["sms.sms"].IAP_TO_SMS_FAILURE_TYPE
        by_uuid = {item.get("uuid"): item for item in response if isinstance(item, dict)}
        results = []
        for message in messages:
            item = by_uuid.get(message["uuid"])
            if item is None:
                state, failure_type, charged = "server_error", "unknown", 0.0
            else:
                state, failure_type = iap_state_to_protocol(item.get("state"), failure_types)
                charged = float(item.get("credit") or 0.0)
            results.append({"uuid": message["uuid"], "state": state, "credits": charged, "failure_type": failure_type})
        return results
