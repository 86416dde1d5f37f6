import logging

from odoo import http
from odoo.http import request

from ..tools.providers.kannel import parse_dlr, parse_mo, verify_secret
from .main import apply_inbound_keyword

_logger = logging.getLogger(__name__)


class SmsKannelController(http.Controller):
    """Callbacks of Kannel gateways: its delivery reports (the ``dlr-url`` we give with each
    message) and inbound messages (an ``sms-service`` ``get-url`` or ``post-url`` of kannel.conf).

    Kannel cannot sign what it sends: each URL carries the gateway's webhook secret (``secret``),
    checked in constant time before anything is parsed or changed; a wrong or missing secret, or an
    unknown, archived or non-Kannel gateway, is answered 403 and changes nothing. Kannel retries a
    DLR call that fails, so every answer to a well-formed call is 200.
    """

    @http.route(
        "/sms_marketing_ext/kannel/<int:gateway_id>/dlr",
        type="http", auth="public", methods=["GET", "POST"], csrf=False, save_session=False,
    )
    def sms_kannel_dlr(self, gateway_id, **params):
        gateway = self._verified_gateway(gateway_id, params.get("secret"))
        if not gateway:
            return self._answer("forbidden", 403)
        try:
            uuid, state, report_date = parse_dlr(params)
        except ValueError as exc:
            _logger.warning("Kannel gateway %s: rejected delivery report: %s", gateway_id, exc)
            return self._answer(str(exc), 400)
        if state is None:  # queued or accepted by the SMSC: not final
            return self._answer("ok")
        known = request.env["mailing.trace"].sudo()._sms_apply_delivery_report(uuid, state, report_date)
        if not known:
            _logger.info("Kannel gateway %s: report '%s' for unknown uuid %s ignored", gateway_id, state, uuid)
        return self._answer("ok")

    @http.route(
        "/sms_marketing_ext/kannel/<int:gateway_id>/inbound",
        type="http", auth="public", methods=["GET", "POST"], csrf=False, save_session=False,
    )
    def sms_kannel_inbound(self, gateway_id, **params):
        gateway = self._verified_gateway(gateway_id, params.get("secret"))
        if not gateway:
            return self._answer("forbidden", 403)
        try:
            inbound = parse_mo(params)
        except ValueError as exc:
            _logger.warning("Kannel gateway %s: rejected inbound message: %s", gateway_id, exc)
            return self._answer(str(exc), 400)
        payload, status = apply_inbound_keyword(gateway, inbound)
        # An empty body: with max-messages = 0 (or omit-empty), Kannel sends no reply SMS.
        return self._answer("" if status == 200 else payload.get("error", ""), status)

    @staticmethod
    def _verified_gateway(gateway_id, secret):
        gateway = request.env["sms.gateway"].sudo().browse(gateway_id).exists()
        if not gateway or not gateway.active or gateway.provider != "kannel":
            _logger.warning("Kannel callback for unknown, archived or other gateway %s refused", gateway_id)
            return request.env["sms.gateway"]
        if not verify_secret(gateway.webhook_secret, secret):
            _logger.warning("Kannel callback for gateway %s refused: missing or wrong secret", gateway_id)
            return request.env["sms.gateway"]
        return gateway

    @staticmethod
    def _answer(text, status=200):
        return request.make_response(text, headers=[("Content-Type", "text/plain; charset=utf-8")], status=status)
