import logging

from odoo import http
from odoo.http import request

from ..tools.providers.twilio import (
    SIGNATURE_HEADER,
    callback_params,
    parse_inbound,
    parse_status_callback,
    verify_signature,
)
from .main import apply_inbound_keyword

_logger = logging.getLogger(__name__)

# What Twilio expects from an inbound webhook that sends no reply.
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class SmsTwilioController(http.Controller):
    """Callbacks of Twilio gateways: message status callbacks (the ``StatusCallback`` we give with
    each message, carrying our uuid) and inbound messages (the number's or Messaging Service's
    "A message comes in" webhook).

    Twilio signs each call with the account's auth token (``X-Twilio-Signature``) over the URL it
    called and the posted form. The URL checked is the gateway's public callback URL (not the one
    this server sees, which a proxy may have rewritten) plus the query string received; the
    signature is checked before anything is parsed or changed. A wrong or missing signature, or an
    unknown, archived or non-Twilio gateway: 403, nothing changes. A signed call that is not a
    valid callback of this gateway's account: 400 with the reason.
    """

    @http.route(
        "/sms_marketing_ext/twilio/<int:gateway_id>/status",
        type="http", auth="public", methods=["POST"], csrf=False, save_session=False,
    )
    def sms_twilio_status(self, gateway_id, **_kwargs):
        gateway = self._verified_gateway(gateway_id, "status")
        if not gateway:
            return self._answer("forbidden", 403)
        try:
            uuid, sid, state, error_code = parse_status_callback(self._params(), gateway.twilio_account_sid)
        except ValueError as exc:
            _logger.warning("Twilio gateway %s: rejected status callback: %s", gateway_id, exc)
            return self._answer(str(exc), 400)
        if state is None:  # queued, sending, sent: not final
            return self._answer("ok")
        known = request.env["mailing.trace"].sudo()._sms_apply_delivery_report(uuid, state, None, gateway)
        if not known:
            _logger.info("Twilio gateway %s: status '%s' (error %s) of %s for uuid %s, not one of its messages, "
                         "ignored", gateway_id, state, error_code, sid, uuid)
        return self._answer("ok")

    @http.route(
        "/sms_marketing_ext/twilio/<int:gateway_id>/inbound",
        type="http", auth="public", methods=["POST"], csrf=False, save_session=False,
    )
    def sms_twilio_inbound(self, gateway_id, **_kwargs):
        gateway = self._verified_gateway(gateway_id, "inbound")
        if not gateway:
            return self._answer("forbidden", 403)
        try:
            inbound = parse_inbound(self._params(), gateway.twilio_account_sid)
        except ValueError as exc:
            _logger.warning("Twilio gateway %s: rejected inbound message: %s", gateway_id, exc)
            return self._answer(str(exc), 400)
        payload, status = apply_inbound_keyword(gateway, inbound)
        if status != 200:
            return self._answer(payload.get("error", ""), status)
        # Empty TwiML: no reply SMS from us (Twilio's Advanced Opt-Out answers STOP/START itself).
        return request.make_response(EMPTY_TWIML, headers=[("Content-Type", "text/xml; charset=utf-8")])

    # ------------------------------------------------------------
    # TOOLS
    # ------------------------------------------------------------

    @staticmethod
    def _params():
        httprequest = request.httprequest
        query = httprequest.query_string.decode("utf-8", "replace")
        return callback_params(query, httprequest.form.to_dict(flat=False))

    @staticmethod
    def _verified_gateway(gateway_id, kind):
        gateway = request.env["sms.gateway"].sudo().browse(gateway_id).exists()
        if not gateway or not gateway.active or gateway.provider != "twilio":
            _logger.warning("Twilio callback for unknown, archived or other gateway %s refused", gateway_id)
            return request.env["sms.gateway"]
        httprequest = request.httprequest
        url = gateway._twilio_callback_url(kind)
        if httprequest.query_string:
            url += "?" + httprequest.query_string.decode("utf-8", "replace")
        if not verify_signature(gateway.twilio_auth_token, url, httprequest.form.to_dict(flat=False),
                                httprequest.headers.get(SIGNATURE_HEADER)):
            _logger.warning("Twilio callback for gateway %s refused: missing or wrong %s", gateway_id, SIGNATURE_HEADER)
            return request.env["sms.gateway"]
        return gateway

    @staticmethod
    def _answer(text, status=200):
        return request.make_response(text, headers=[("Content-Type", "text/plain; charset=utf-8")], status=status)
