"""Provider ``kannel``: the open-source SMS gateway Kannel (bearerbox + smsbox), in front of an
operator's SMSC over SMPP, EMI/UCP or HTTP (no Odoo import).

* Sending: one HTTP GET per message to smsbox's ``/cgi-bin/sendsms`` (``username``, ``password``,
  ``from``, ``to``, ``text`` with ``charset=UTF-8``, ``coding`` 0 for a GSM-7 text or 2 for UCS-2,
  ``mclass`` from the message class, ``validity`` in minutes, ``smsc`` route), asking for delivery
  reports with ``dlr-mask`` and a ``dlr-url`` that carries our uuid.
* Kannel cannot sign what it posts: its delivery reports (``dlr-url``) and inbound messages (an
  ``sms-service`` ``get-url``) reach our routes with the gateway's unguessable secret in the URL,
  checked by :func:`verify_secret`.
* No balance or price API: the gateway record holds a credit budget and local prices.
* No idempotency key and no status query: a message whose answer was lost (timeout, connection cut
  after the request went out, HTTP 5xx) is "unknown" and never sent again blindly; its delivery
  report settles it. A refused connection is known not to have sent anything: retried.

>>> kannel_coding("Prix 5€ [ok]"), kannel_coding("Merci 😀")
(0, 2)
>>> report_state(1, ""), report_state(2, "id:1 stat:EXPIRED err:000"), report_state(8, "ACK/")
('delivered', 'expired', None)
"""

import hmac
import logging
import re
import urllib.parse
from datetime import datetime, timezone

import requests

from ..sms_segments import analyze
from .base import (
    EARLIEST_CALLBACK_DATE,
    MAX_CLOCK_SKEW,
    Capabilities,
    GatewayAccessError,
    GatewayConfigurationError,
    GatewayError,
    GatewayResponseError,
    SmsProvider,
    request_failed,
    storable_string,
    validate_messages,
)

_logger = logging.getLogger(__name__)

SENDSMS_PATH = "/cgi-bin/sendsms"
# Kannel's DLR types (dlr.h): 1 delivered to the phone, 2 not delivered, 4 queued at the SMSC,
# 8 accepted by the SMSC, 16 rejected by the SMSC. We ask for the final ones.
DLR_DELIVERED, DLR_FAILED, DLR_BUFFERED, DLR_SMSC_SUCCESS, DLR_SMSC_FAIL = 1, 2, 4, 8, 16
DLR_MASK = DLR_DELIVERED | DLR_FAILED | DLR_SMSC_FAIL
MCLASS = {"flash": 0, "sim": 2}  # "standard": no class
# SMPP receipts ("id:... stat:EXPIRED err:...") say more than the DLR type.
SMPP_STAT_RE = re.compile(r"\bstat:([A-Z]+)")
SMPP_STATES = {"DELIVRD": "delivered", "EXPIRED": "expired", "UNDELIV": "undelivered",
               "DELETED": "undelivered", "REJECTD": "rejected", "UNKNOWN": None, "ACCEPTD": None, "ENROUTE": None}
# smsbox's answers to sendsms (smsbox.c): 202 "0: Accepted for delivery" / "3: Queued for later delivery".
ACCEPTED_STATUSES = (200, 202)
# What :meth:`KannelClient._state` says of a message smsbox cannot route (not a send state).
NOT_ROUTABLE = "not_routable"


def kannel_coding(text):
    """``coding`` of ``text`` for sendsms: 0 (GSM-7) when the whole text is in the GSM alphabet, else 2 (UCS-2)."""
    return 0 if analyze(text)["encoding"] == "gsm7" else 2


def report_state(dlr_type, reply=""):
    """Our report state of a Kannel DLR (``%d`` type, ``%A`` SMSC reply), None when it is not final."""
    stat = SMPP_STAT_RE.search(reply or "")
    if stat and stat.group(1) in SMPP_STATES and dlr_type in (DLR_DELIVERED, DLR_FAILED):
        return SMPP_STATES[stat.group(1)] or ("delivered" if dlr_type == DLR_DELIVERED else "undelivered")
    return {DLR_DELIVERED: "delivered", DLR_FAILED: "undelivered", DLR_SMSC_FAIL: "rejected"}.get(dlr_type)


def verify_secret(expected, given):
    """Whether ``given`` (from a callback's URL) is the gateway's secret, in constant time; an empty
    secret never verifies.

    >>> verify_secret("s3cret", "s3cret"), verify_secret("s3cret", "nope"), verify_secret("", "")
    (True, False, False)
    """
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def _timestamp(value):
    """A naive UTC datetime from Kannel's ``%T`` (Unix time), None when absent or not a number."""
    try:
        return datetime.fromtimestamp(int(value), timezone.utc).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _param(params, name):
    value = (params or {}).get(name)
    return value[0] if isinstance(value, list | tuple) else value


class KannelClient(SmsProvider):
    """Client of one smsbox ``sendsms-user``.

    :param sendsms_url: smsbox's base URL (``http://kannel:13013``) or the full sendsms URL.
    :param smsc: smsc-id to route through (empty: Kannel's own routing).
    :param validity: minutes the SMSC keeps trying (0: the SMSC's default).
    """

    CODE = "kannel"
    CAPABILITIES = Capabilities(delivery_reports=True, inbound=True, message_classes=True)

    def __init__(self, sendsms_url, username, password, smsc=None, validity=0, dlr_mask=DLR_MASK,
                 timeout=10, session=None):
        if not sendsms_url or not sendsms_url.startswith(("http://", "https://")):
            raise GatewayConfigurationError(message="the Kannel sendsms URL must start with http:// or https://")
        if not username or not password:
            raise GatewayConfigurationError(message="the Kannel sendsms user and password are required")
        super().__init__(timeout=timeout, session=session)
        url = sendsms_url.rstrip("/")
        self.url = url if url.endswith(SENDSMS_PATH) else url + SENDSMS_PATH
        self.username, self.password = username, password
        self.smsc, self.validity, self.dlr_mask = smsc or None, validity or 0, dlr_mask

    def check_connection(self):
        """smsbox answers a sendsms call without a receiver with 400 ("Missing receiver number")
        once the user and password are right, 403 otherwise. Nothing is sent."""
        try:
            response = self.session.get(
                self.url, params={"username": self.username, "password": self.password}, timeout=self.timeout
            )
        except requests.exceptions.RequestException as exc:
            raise request_failed(exc, self.url, self.timeout, secrets=self._secrets()) from exc
        if response.status_code in (401, 403):
            raise GatewayAccessError(message=f"Kannel refused the sendsms user: {response.text.strip()[:200]}")
        if response.status_code != 400 or "receiver" not in response.text.lower():
            raise GatewayResponseError(
                message=f"{self.url} answered HTTP {response.status_code}: is it Kannel's smsbox? "
                f"({response.text.strip()[:200]!r})"
            )

    def _secrets(self, report_url=None):
        """What our GET requests carry that must never be logged: the password, the callback secret."""
        secret = urllib.parse.parse_qs(urllib.parse.urlsplit(report_url or "").query).get("secret", [""])[0]
        return (self.password, secret)

    def sendsms_params(self, message, report_url=None):
        """The query parameters of one message's sendsms call (``report_url``: our DLR route with
        its secret; the uuid and Kannel's escapes are added here)."""
        params = {
            "username": self.username, "password": self.password, "to": message["number"],
            "text": message["content"], "charset": "UTF-8", "coding": kannel_coding(message["content"]),
        }
        if message.get("sender"):
            params["from"] = message["sender"]
        if message.get("sms_class") in MCLASS:
            params["mclass"] = MCLASS[message["sms_class"]]
        if self.validity:
            params["validity"] = self.validity
        if self.smsc:
            params["smsc"] = self.smsc
        if report_url:
            separator = "&" if "?" in report_url else "?"
            params["dlr-mask"] = self.dlr_mask
            params["dlr-url"] = f"{report_url}{separator}uuid={message['uuid']}&type=%d&at=%T&reply=%A"
        return params

    def send(self, messages, webhook_url=None):
        """Send each message with its own sendsms call; return ``{"uuid", "state", "credits"}`` per
        message (credits 0: Kannel does not charge, the gateway record prices locally).

        ``state`` is ``unknown`` for the message whose call may have reached Kannel without an
        answer; the messages after it are not tried (``server_error``: sent later). A refused
        connection, bad credentials or an answer we cannot read fail the whole call only when they
        come for the first message; later in the batch, what Kannel accepted before stays accepted
        (failing the whole call would send it again): the refused message and the ones after it
        are ``server_error`` (retried later, never tried in this call). A message smsbox cannot
        route (HTTP 403 "Not routable") is ``server_error`` too, and the batch goes on.
        """
        messages = validate_messages(messages)
        results, failure = [], None
        for message in messages:
            if failure is not None:
                results.append({"uuid": message["uuid"], "state": "server_error", "credits": 0.0})
                continue
            try:
                response = self.session.get(self.url, params=self.sendsms_params(message, webhook_url),
                                            timeout=self.timeout)
            except requests.exceptions.RequestException as exc:
                failure = request_failed(exc, self.url, self.timeout, secrets=self._secrets(webhook_url))
                if not results and not failure.maybe_sent:
                    raise failure from exc
                _logger.warning("Kannel: %s (message %s)", failure, message["uuid"])
                results.append({"uuid": message["uuid"], "state": "unknown" if failure.maybe_sent else "server_error",
                                "credits": 0.0})
                continue
            try:
                state = self._state(response)
            except GatewayError as error:
                if not results:
                    raise
                # smsbox refused this call (it took nothing), after answering the ones before.
                _logger.warning("Kannel refused message %s after %s of the batch: %s", message["uuid"],
                                len(results), error)
                failure, state = error, "server_error"
            if state == "unknown":
                failure = True
            elif state == NOT_ROUTABLE:
                _logger.warning("Kannel: no route for message %s: %s", message["uuid"], response.text.strip()[:200])
                state = "server_error"
            results.append({"uuid": message["uuid"], "state": state, "credits": 0.0})
        return results

    def _state(self, response):
        status, text = response.status_code, response.text.strip()
        if status in ACCEPTED_STATUSES:
            return "accepted"
        if status == 403 and "routable" in text.lower():
            # "Not routable. Do not try again.": bearerbox has no SMSC for this receiver (or the
            # smsc asked for); this message only, nothing was taken.
            return NOT_ROUTABLE
        if status in (401, 403):
            raise GatewayAccessError(message=f"Kannel refused the sendsms user: {text[:200]}")
        if status == 400:
            lowered = text.lower()
            if "sender" in lowered or "from" in lowered:
                return "invalid_sender"
            if "receiver" in lowered or "number" in lowered or "to " in lowered:
                return "wrong_number_format"
            raise GatewayResponseError(message=f"Kannel refused the request: {text[:200]}")
        if status == 503:
            # smsbox could not hand the message to bearerbox ("Sending failed", "Queue full"):
            # it did not take it, trying later is safe.
            return "server_error"
        if status >= 500:
            return "unknown"
        raise GatewayResponseError(
            message=f"{self.url} answered HTTP {status}: is it Kannel's smsbox? ({text[:200]!r})"
        )

    def parse_delivery_report(self, body, params=None):
        """See :func:`parse_dlr`."""
        return parse_dlr(params)

    def parse_inbound(self, body, params=None):
        """See :func:`parse_mo`."""
        return parse_mo(params)


def parse_dlr(params):
    """``(uuid, state, at)`` of a DLR call built from our ``dlr-url`` (``params``: its query
    values); ``state`` None when the report is not final (queued, or accepted by the SMSC).

    >>> parse_dlr({"uuid": "A" * 32, "type": "1", "at": "1700000000", "reply": ""})
    ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'delivered', datetime.datetime(2023, 11, 14, 22, 13, 20))
    """
    uuid = (_param(params, "uuid") or "").lower()
    if not re.fullmatch(r"[0-9a-f]{32}", uuid):
        raise ValueError("uuid must be 32 hex characters")
    try:
        dlr_type = int(_param(params, "type"))
    except (TypeError, ValueError) as exc:
        raise ValueError("type must be Kannel's DLR type (a number)") from exc
    return uuid, report_state(dlr_type, _param(params, "reply") or ""), _timestamp(_param(params, "at"))


def parse_mo(params):
    """``{"from", "to", "body", "at"}`` of an sms-service call (``from=%p&to=%P&text=%a&at=%T``).

    >>> parse_mo({"from": "+33612345678", "to": "SHOP", "text": "STOP"})["body"]
    'STOP'
    """
    sender, text = _param(params, "from"), _param(params, "text")
    if not isinstance(sender, str) or not sender:
        raise ValueError("'from' is required")
    if not isinstance(text, str):
        raise ValueError("'text' is required")
    for name, value in (("from", sender), ("text", text)):
        storable_string({name: value}, name)
    # Replies are ordered by their date (%T); a service configured without it dates them on arrival.
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    at = _timestamp(_param(params, "at")) or now
    if at < EARLIEST_CALLBACK_DATE or at > now + MAX_CLOCK_SKEW:
        raise ValueError(f"'at' is no date a message has: {_param(params, 'at')!r}")
    return {"from": sender, "to": _param(params, "to") or "", "body": text, "at": at}
