import logging

from odoo import _, http
from odoo.http import request

from ..tools.sms_gateway_api import SIGNATURE_HEADER, parse_delivery_report, parse_inbound, verify_signature
from ..tools.sms_keywords import START, STOP, classify_inbound, normalize_sender_number

_logger = logging.getLogger(__name__)


class SmsGatewayWebhookController(http.Controller):
    """Callbacks of IAP-style gateways: delivery reports and inbound messages.

    Each is a POST of a JSON body signed with the gateway record's webhook secret
    (``X-SMS-Signature``: hex HMAC-SHA256 of the raw body). The signature is checked on the raw
    bytes before anything is parsed or changed; a missing or wrong signature, or an unknown or
    archived gateway, is answered 403 and changes nothing.
    """

    @http.route(
        "/sms_marketing_ext/webhook/<int:gateway_id>/status",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def sms_gateway_status(self, gateway_id, **_kwargs):
        body = request.httprequest.get_data()
        gateway = self._verified_gateway(gateway_id, body)
        if not gateway:
            return self._answer({"ok": False, "error": "forbidden"}, 403)
        try:
            uuid, state, report_date = parse_delivery_report(body)
        except ValueError as exc:
            _logger.warning("SMS gateway %s: rejected delivery report: %s", gateway_id, exc)
            return self._answer({"ok": False, "error": str(exc)}, 400)
        known = request.env["mailing.trace"].sudo()._sms_apply_delivery_report(uuid, state, report_date)
        if not known:
            _logger.info("SMS gateway %s: delivery report '%s' for unknown uuid %s ignored", gateway_id, state, uuid)
        return self._answer({"ok": True})

    @http.route(
        "/sms_marketing_ext/webhook/<int:gateway_id>/inbound",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def sms_gateway_inbound(self, gateway_id, **_kwargs):
        body = request.httprequest.get_data()
        gateway = self._verified_gateway(gateway_id, body)
        if not gateway:
            return self._answer({"ok": False, "error": "forbidden"}, 403)
        try:
            inbound = parse_inbound(body)
        except ValueError as exc:
            _logger.warning("SMS gateway %s: rejected inbound message: %s", gateway_id, exc)
            return self._answer({"ok": False, "error": str(exc)}, 400)
        keyword = classify_inbound(inbound["body"])
        if keyword is None:
            _logger.info("SMS gateway %s: inbound message from %s ignored (no keyword)", gateway_id, inbound["from"])
            return self._answer({"ok": True, "action": None})
        number = normalize_sender_number(inbound["from"])
        if not number:
            _logger.warning("SMS gateway %s: inbound %s from unusable number %r", gateway_id, keyword, inbound["from"])
            return self._answer({"ok": False, "error": "'from' is not a phone number in international format"}, 400)
        blacklist = request.env["phone.blacklist"].sudo()
        text = inbound["body"].strip()
        if keyword == STOP:
            blacklist._add(
                [number],
                message=_(
                    "Blacklisted: replied \"%(text)s\" to %(to)s (gateway %(gateway)s).",
                    text=text,
                    to=inbound["to"] or "-",
                    gateway=gateway.name,
                ),
            )
        elif keyword == START:
            blacklist._remove(
                [number],
                message=_(
                    "Removed from the blacklist: replied \"%(text)s\" to %(to)s (gateway %(gateway)s).",
                    text=text,
                    to=inbound["to"] or "-",
                    gateway=gateway.name,
                ),
            )
        _logger.info("SMS gateway %s: inbound %s from %s applied", gateway_id, keyword.upper(), number)
        return self._answer({"ok": True, "action": keyword})

    # ------------------------------------------------------------
    # TOOLS
    # ------------------------------------------------------------

    @staticmethod
    def _verified_gateway(gateway_id, body):
        """The active gateway whose webhook secret signed ``body``, else an empty recordset."""
        gateway = request.env["sms.gateway"].sudo().browse(gateway_id).exists()
        if not gateway or not gateway.active:
            _logger.warning("SMS webhook for unknown or archived gateway %s refused", gateway_id)
            return request.env["sms.gateway"]
        if not verify_signature(gateway.webhook_secret, body, request.httprequest.headers.get(SIGNATURE_HEADER)):
            _logger.warning("SMS webhook for gateway %s refused: missing or wrong %s", gateway_id, SIGNATURE_HEADER)
            return request.env["sms.gateway"]
        return gateway

    @staticmethod
    def _answer(payload, status=200):
        return request.make_json_response(payload, status=status)
