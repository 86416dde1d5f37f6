import logging

from werkzeug.exceptions import NotFound, abort

from odoo import _, fields, http
from odoo.exceptions import UserError
from odoo.http import request, route

from odoo.addons.mass_mailing_sms.controllers.main import MailingSMSController
from odoo.addons.sms.controllers.main import SmsController

from ..tools import sms_tokens
from ..tools.sms_bots import is_bot
from ..tools.sms_gateway_api import SIGNATURE_HEADER, parse_delivery_report, parse_inbound, verify_signature

_logger = logging.getLogger(__name__)


def apply_inbound_keyword(gateway, inbound):
    """Apply a STOP or START reply received through ``gateway`` (see
    ``sms.consent.event._sms_apply_reply``); return ``(answer payload, HTTP status)``."""
    return request.env["sms.consent.event"].sudo()._sms_apply_reply(gateway, inbound)


class SmsGatewayWebhookController(http.Controller):
    """Callbacks of IAP-style gateways: delivery reports and inbound messages.

    Each is a POST of a JSON body signed with the gateway record's webhook secret
    (``X-SMS-Signature``: hex HMAC-SHA256 of the raw body). The signature is checked on the raw
    bytes before anything is parsed or changed; a missing or wrong signature, or an unknown or
    archived gateway, is answered 403 and changes nothing. A signed body that is not a valid
    callback (not JSON, nested too deeply, wrong types, NUL or lone surrogates, dates no message
    has) is answered 400 with the reason, and changes nothing.
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
            uuid, state, report_date = parse_delivery_report(body, fields.Datetime.now())
        except ValueError as exc:
            _logger.warning("SMS gateway %s: rejected delivery report: %s", gateway_id, exc)
            return self._answer({"ok": False, "error": str(exc)}, 400)
        known = request.env["mailing.trace"].sudo()._sms_apply_delivery_report(uuid, state, report_date, gateway)
        if not known:
            _logger.info("SMS gateway %s: delivery report '%s' for uuid %s, not one of its messages, ignored",
                         gateway_id, state, uuid)
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
            inbound = parse_inbound(body, fields.Datetime.now())
        except ValueError as exc:
            _logger.warning("SMS gateway %s: rejected inbound message: %s", gateway_id, exc)
            return self._answer({"ok": False, "error": str(exc)}, 400)
        payload, status = apply_inbound_keyword(gateway, inbound)
        return self._answer(payload, status)

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


class SmsLinkController(http.Controller):
    """Tracked links and the opt-out link of marketing SMS, both carrying the recipient's token
    (``tools/sms_tokens.py``): ``/r/<tracker code>/<link token>`` and ``/sms/o/<opt-out token>``."""

    @staticmethod
    def _trace_from_token(purpose, token):
        """The SMS trace a valid ``token`` designates, else an empty recordset."""
        Trace = request.env["mailing.trace"].sudo()
        secret = request.env["ir.config_parameter"].sudo().get_param("database.secret")
        trace_id = sms_tokens.read_token(secret, purpose, token) if secret else None
        if not trace_id:
            return Trace
        trace = Trace.browse(trace_id).exists()
        if not trace or trace.trace_type != "sms" or not trace.mass_mailing_id:
            return Trace
        return trace

    @staticmethod
    def _is_test_token(purpose, token):
        """Whether ``token`` is the valid token of a test SMS (signed for ``TEST_TRACE_ID``)."""
        secret = request.env["ir.config_parameter"].sudo().get_param("database.secret")
        return bool(secret) and sms_tokens.read_token(secret, purpose, token) == sms_tokens.TEST_TRACE_ID

    # ------------------------------------------------------------
    # Tracked links
    # ------------------------------------------------------------

    @http.route("/r/<string:code>/<string:token>", type="http", auth="public", methods=["GET"], save_session=False)
    def sms_link_redirect(self, code, token, **_kwargs):
        """Redirect to the link's URL, exactly as written in the SMS, and record the click for the
        recipient the token designates. A wrong or tampered token still redirects (someone clicked)
        but the click is nobody's; clicks of link previews and crawlers (HEAD included) are recorded
        as bot clicks, never as the recipient's."""
        tracker = request.env["link.tracker.code"].sudo().search([("code", "=", code)], limit=1).link_id
        if not tracker:
            raise NotFound()
        trace = self._trace_from_token("link", token)
        if trace and not tracker._sms_belongs_to(trace.mass_mailing_id):
            _logger.info("SMS link %s: token of trace %s from another mailing: click not attributed", code, trace.id)
            trace = trace.browse()
        httprequest = request.httprequest
        request.env["link.tracker.click"]._sms_add_click(
            code,
            trace=trace or None,
            is_bot=is_bot(httprequest.user_agent.string, httprequest.method),
            ip=httprequest.remote_addr,
            country_code=request.geoip.country_code,
        )
        response = request.redirect(tracker._sms_redirect_url(), code=302, local=False)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
        return response

    # ------------------------------------------------------------
    # Opt-out link
    # ------------------------------------------------------------

    @http.route("/sms/o/<string:token>", type="http", auth="public", methods=["GET", "POST"])
    def sms_optout(self, token, action=None, **_kwargs):
        """One click: a person opening the link is opted out at once and sees the confirmation
        with an Undo button (a POST of the page's form, CSRF-protected, ``action=optin``). Link
        previews, scanners and crawlers (tools/sms_bots.py, HEAD included) also open links: they
        only get the page, with an Unsubscribe button, and change nothing. A wrong or tampered
        token changes nothing: 404 page. Opening the link again is harmless."""
        if self._is_test_token("optout", token):
            # The link of a test SMS (wizard/mailing_sms_test.py signs it for TEST_TRACE_ID, which no
            # trace has): show what recipients get, without changing anything.
            return request.render(
                "sms_marketing_ext.sms_optout_test", {"res_company": request.env.company},
                headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"},
            )
        trace = self._trace_from_token("optout", token)
        if not trace:
            return request.render("sms_marketing_ext.sms_optout_invalid", {}, status=404)
        Event = request.env["sms.consent.event"].sudo()
        httprequest = request.httprequest
        changed = None
        if httprequest.method == "GET":
            action = None if is_bot(httprequest.user_agent.string, httprequest.method) else "optout"
        elif action not in ("optout", "optin"):
            return request.render("sms_marketing_ext.sms_optout_invalid", {}, status=400)
        if action:
            changed = Event._sms_link_apply(trace, action == "optout")
            _logger.info("SMS opt-out link of trace %s: %s (%s)", trace.id, action,
                         "applied" if changed else "nothing to change")
        status = Event._sms_link_status(trace)
        return request.render(
            "sms_marketing_ext.sms_optout_page",
            {
                **status,
                "token": token,
                "done": action,
                "changed": changed,
                "mailing": trace.mass_mailing_id,
                "res_company": trace.mass_mailing_id.company_id or request.env.company,
            },
            headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"},
        )


class SmsStockOptoutController(MailingSMSController):
    """Stock's opt-out page (number retyped by the recipient, still linked from SMS sent before
    this addon): its opt-outs are consent events of source "link" for their mailing."""

    @http.route()
    def blacklist_number(self, mailing_id, trace_code, **post):
        request.update_context(sms_consent_source="link", sms_consent_mailing_id=mailing_id)
        return super().blacklist_number(mailing_id, trace_code, **post)


# Stock Odoo IAP delivery report states -> the protocol's report states (see the odoo_iap provider).
IAP_REPORT_STATES = {
    "delivered": "delivered",
    "sms_expired": "expired",
    "sms_not_delivered": "undelivered",
    "sms_invalid_destination": "rejected",
    "sms_not_allowed": "rejected",
    "sms_rejected": "rejected",
}


class SmsIapStatusController(SmsController):
    """Odoo IAP reports deliveries to stock's ``/sms/status`` (unsigned, as stock has it; the
    uuids are random 128-bit values). Messages sent by our cron through the Odoo IAP provider have
    no sms.tracker: their traces are updated here, in one statement, and only those sent through
    an Odoo IAP gateway (the signed webhook is the only way for the others). A call carries at most
    ``MAX_IAP_REPORT_UUIDS`` uuids (more is answered HTTP 413, nothing applied); a malformed one is
    answered a JSON-RPC error, as stock does, never a server error."""

    MAX_IAP_REPORT_UUIDS = 100_000

    @route()
    def update_sms_status(self, message_statuses=None, **_kwargs):
        states = self._sms_iap_report_states(message_statuses)
        res = super().update_sms_status(message_statuses)
        request.env["mailing.trace"].sudo()._sms_apply_iap_reports(states)
        return res

    def _sms_iap_report_states(self, message_statuses):
        """The report state of each uuid of a valid call (stock checks the uuids' format)."""
        if not isinstance(message_statuses, list) or not all(
            isinstance(status, dict)
            and isinstance(status.get("sms_status"), str)
            and isinstance(status.get("uuids"), list)
            and all(isinstance(uuid, str) for uuid in status["uuids"])
            for status in message_statuses
        ):
            _logger.warning("SMS delivery reports refused: message_statuses is not a list of "
                            "{sms_status: string, uuids: [string]}")
            raise UserError(_("Bad parameters: message_statuses must be a list of {sms_status, uuids}."))
        count = sum(len(status["uuids"]) for status in message_statuses)
        if count > self.MAX_IAP_REPORT_UUIDS:
            reason = f"too many uuids: {count}, at most {self.MAX_IAP_REPORT_UUIDS} per call"
            _logger.warning("SMS delivery reports refused: %s", reason)
            abort(request.make_json_response(
                {"jsonrpc": "2.0", "id": getattr(request.dispatcher, "request_id", None),
                 "error": {"code": 413, "message": reason}},
                status=413,
            ))
        states = {}
        for status in message_statuses:
            state = IAP_REPORT_STATES.get(status["sms_status"])
            if state:
                states.update(dict.fromkeys(status["uuids"], state))
        return states
