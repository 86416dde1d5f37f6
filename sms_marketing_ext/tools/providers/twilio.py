"""Provider ``twilio``: Twilio's REST API, or any service speaking it (no Odoo import).

* Sending: one ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` per message (form fields
  ``To``, ``Body``, ``From`` or ``MessagingServiceSid``, ``StatusCallback``), HTTP basic auth with
  the Account SID and auth token, or an API key SID and its secret. The answer's ``sid`` is kept on
  the trace. Twilio has no idempotency key: a message whose answer was lost (timeout, connection
  cut after the request went out, HTTP 5xx) is "unknown" and never sent again blindly; its status
  callback (which carries our uuid) settles it. A refused connection is known not to have sent
  anything: retried.
* Status query (:meth:`TwilioClient.status_of`, for the settle cron): ``GET .../Messages/{Sid}.json``
  by the SID kept on the trace, its status and error code read as a status callback's. A message
  whose send answer was lost has no SID: it is looked up in ``GET .../Messages.json?To=`` (the
  outbound message to that number, from our sender or Messaging Service, created around the time
  we sent it). Only a single match settles it; finding none proves nothing (Twilio takes no key of
  ours), so such a message is never recorded as not sent: it waits for its callback, or the
  settle cron's horizon.
* Balance: ``GET .../Balance.json``; prices: the Pricing API (``GET /v1/Messaging/Countries/{ISO}``
  on its own base URL), the dearest outbound price of each configured country.
* Status callbacks and inbound messages are form posts signed with ``X-Twilio-Signature``:
  base64 HMAC-SHA1, keyed with the auth token, of the full URL Twilio called followed by each POST
  parameter name and value, sorted by name (:func:`signature`, :func:`verify_signature`).
* Twilio's own opt-out handling (Advanced Opt-Out) tells the keyword it recognised in
  ``OptOutType`` (``STOP``, ``START``, ``HELP``): it wins over our reading of the body.

>>> report_state("delivered", None), report_state("undelivered", "30003"), report_state("sent", None)
('delivered', 'undelivered', None)
>>> report_state("failed", "30036"), report_state("failed", "21211")
('expired', 'rejected')
>>> report_state("canceled", None), report_state("read", None), report_state("accepted", None)
('undelivered', 'delivered', None)
>>> rfc2822_datetime("Fri, 24 May 2019 17:18:28 +0000")
datetime.datetime(2019, 5, 24, 17, 18, 28)
"""

import base64
import email.utils
import hashlib
import hmac
import logging
import re
import urllib.parse
from datetime import datetime, timedelta, timezone

import requests

from .base import (
    Capabilities,
    GatewayAccessError,
    GatewayConfigurationError,
    GatewayError,
    GatewayInsufficientCreditError,
    GatewayResponseError,
    GatewayTransientError,
    GatewayValidationError,
    SmsProvider,
    request_failed,
    storable_string,
    validate_messages,
)

_logger = logging.getLogger(__name__)

API_BASE = "https://api.twilio.com"
PRICING_BASE = "https://pricing.twilio.com"
API_VERSION = "2010-04-01"
SIGNATURE_HEADER = "X-Twilio-Signature"
ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")
API_KEY_SID_RE = re.compile(r"^SK[0-9a-fA-F]{32}$")
MESSAGING_SERVICE_SID_RE = re.compile(r"^MG[0-9a-fA-F]{32}$")
MESSAGE_SID_RE = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
# Twilio's message statuses (message_enum_status of its OpenAPI description): the final ones, with
# the error codes that say more. "read" (WhatsApp) comes after "delivered"; "canceled" (a scheduled
# message canceled before it went out) will never be delivered.
FINAL_STATUSES = {"delivered": "delivered", "read": "delivered", "undelivered": "undelivered",
                  "failed": "undelivered", "canceled": "undelivered"}
NOT_FINAL_STATUSES = ("accepted", "scheduled", "queued", "sending", "sent", "receiving", "received",
                      "partially_delivered")
# Looking up a message whose send answer was lost (no SID): Twilio's creation date of ours is at most
# the call's timeout before the moment we recorded it as sent; this margin covers clocks apart.
LOOKUP_MARGIN = timedelta(minutes=10)
LOOKUP_PAGE_SIZE = 50
LOOKUP_PAGES = 3
# Error codes (twilio.com/docs/api/errors) naming why a message was not delivered.
EXPIRED_ERRORS = frozenset({"30036"})  # validity period expired
REJECTED_ERRORS = frozenset({
    "21211", "21212", "21408", "21421", "21610", "21612", "21614", "30004", "30005", "30006", "30007", "30034",
})
# Error codes of a refused Messages.json call, per message (not the whole call).
WRONG_NUMBER_ERRORS = frozenset({"21211", "21214", "21217", "21219", "21401", "21407", "21408", "21421", "21610",
                                 "21612", "21614"})
INVALID_SENDER_ERRORS = frozenset({"21212", "21606", "21659", "21660", "21703", "21704", "21705"})
OPT_OUT_TYPES = {"STOP": "stop", "START": "start"}


def report_state(status, error_code=None):
    """Our report state of a Twilio message status (and ``ErrorCode``), None when not final."""
    state = FINAL_STATUSES.get(status)
    if state is None:
        return None
    code = str(error_code or "").strip()
    if code in EXPIRED_ERRORS:
        return "expired"
    if code in REJECTED_ERRORS:
        return "rejected"
    return state


def rfc2822_datetime(value):
    """A naive UTC ``datetime`` of one of Twilio's RFC 2822 dates, None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def message_state(payload):
    """``(state, at)`` of a Message resource (``GET .../Messages/{Sid}.json``): ``state`` a report
    state as its status callback would give, or ``pending`` while not final (or a status we do not
    know); ``at`` its last update (naive UTC) when final, else None.

    >>> message_state({"status": "undelivered", "error_code": 30007, "date_updated": "Fri, 24 May 2019 17:18:28 +0000"})
    ('rejected', datetime.datetime(2019, 5, 24, 17, 18, 28))
    >>> message_state({"status": "sent", "error_code": None})
    ('pending', None)
    """
    status = payload.get("status")
    error_code = payload.get("error_code")
    state = report_state(status, None if error_code is None else str(error_code))
    if state is None:
        if status not in NOT_FINAL_STATUSES:
            _logger.warning("Twilio: unknown message status %r, read as not final", status)
        return "pending", None
    at = rfc2822_datetime(payload.get("date_updated"))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return state, min(at, now) if at else None


def signature(auth_token, url, params):
    """Twilio's ``X-Twilio-Signature`` of a POST to ``url`` (exactly as Twilio called it, query
    string included) with form ``params`` (a dict of strings, or of lists of strings)."""
    data = url
    for name in sorted(params):
        values = params[name]
        for value in (values if isinstance(values, list | tuple) else [values]):
            data += name + value
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(auth_token, url, params, given):
    """Whether ``given`` is the signature of this call, in constant time; an empty token or
    signature never verifies."""
    if not auth_token or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(signature(auth_token, url, params).encode(), given.encode("utf-8", "replace"))


def _param(params, name, required=True):
    value = (params or {}).get(name)
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise ValueError(f"'{name}' must appear once")
        value = value[0]
    if value is None and not required:
        return None
    return storable_string({name: value}, name)


def parse_status_callback(params, account_sid):
    """``(uuid, message sid, state, error code)`` of a status callback (``params``: the callback
    URL's query, where our uuid is, and the form Twilio posted); ``state`` None when not final.
    ValueError when it is not one of this account's status callbacks."""
    uuid = (_param(params, "uuid") or "").lower()
    if not re.fullmatch(r"[0-9a-f]{32}", uuid):
        raise ValueError("uuid must be 32 hex characters")
    sid = _param(params, "MessageSid")
    if not MESSAGE_SID_RE.match(sid):
        raise ValueError("'MessageSid' is not a message SID")
    if _param(params, "AccountSid") != account_sid:
        raise ValueError("'AccountSid' is not this gateway's account")
    status = _param(params, "MessageStatus")
    if status not in FINAL_STATUSES and status not in NOT_FINAL_STATUSES:
        raise ValueError(f"unknown 'MessageStatus' {status!r}")
    error_code = _param(params, "ErrorCode", required=False) or None
    if error_code is not None and not error_code.isdigit():
        raise ValueError("'ErrorCode' must be a number")
    return uuid, sid, report_state(status, error_code), error_code


def parse_inbound(params, account_sid):
    """``{"from", "to", "body", "at", "message_id", "keyword"}`` of an inbound message Twilio
    posted; ``keyword`` is ``stop``/``start`` when Twilio's opt-out handling recognised one
    (``OptOutType``), else None (the body is read as usual). Dated on arrival (Twilio sends no
    date); the message SID identifies a retried call."""
    if _param(params, "AccountSid") != account_sid:
        raise ValueError("'AccountSid' is not this gateway's account")
    sid = _param(params, "MessageSid")
    if not MESSAGE_SID_RE.match(sid):
        raise ValueError("'MessageSid' is not a message SID")
    sender, body = _param(params, "From"), _param(params, "Body")
    if not sender:
        raise ValueError("'From' is required")
    opt_out = (_param(params, "OptOutType", required=False) or "").upper()
    return {
        "from": sender, "to": _param(params, "To", required=False) or "", "body": body,
        "at": datetime.now(timezone.utc).replace(tzinfo=None).replace(microsecond=0),
        "message_id": sid, "keyword": OPT_OUT_TYPES.get(opt_out),
    }


class TwilioClient(SmsProvider):
    """Client of one Twilio account (or subaccount).

    :param api_base: base URL of the REST API (``https://api.twilio.com``).
    :param pricing_base: base URL of the Pricing API (``https://pricing.twilio.com``).
    :param username, password: the Account SID and auth token, or an API key SID and its secret.
    :param sender: the ``From`` number or alphanumeric id, unless ``messaging_service_sid`` is set
        (Twilio then picks the number); a message's own sender wins over ``sender``.
    :param price_countries: ISO codes whose prices :meth:`prices` reads.
    """

    CODE = "twilio"
    CAPABILITIES = Capabilities(balance=True, prices=True, delivery_reports=True, status_query=True, inbound=True)

    def __init__(self, account_sid, username, password, api_base=API_BASE, pricing_base=PRICING_BASE,
                 sender=None, messaging_service_sid=None, price_countries=(), timeout=10, session=None):
        for name, url in (("API", api_base), ("Pricing API", pricing_base)):
            if not url or not url.startswith(("http://", "https://")):
                raise GatewayConfigurationError(message=f"the Twilio {name} base URL must start with http:// or https://")
        if not account_sid or not ACCOUNT_SID_RE.match(account_sid):
            raise GatewayConfigurationError(message="the Account SID is AC followed by 32 hexadecimal characters")
        if not username or not password:
            raise GatewayConfigurationError(message="the auth token (or API key SID and secret) is required")
        if messaging_service_sid and not MESSAGING_SERVICE_SID_RE.match(messaging_service_sid):
            raise GatewayConfigurationError(
                message="the Messaging Service SID is MG followed by 32 hexadecimal characters")
        super().__init__(timeout=timeout, session=session)
        self.account_sid = account_sid
        self.session.auth = (username, password)
        self.password = password
        self.api_base = api_base.rstrip("/")
        self.api_url = f"{self.api_base}/{API_VERSION}/Accounts/{account_sid}"
        self.pricing_base = pricing_base.rstrip("/")
        self.sender, self.messaging_service_sid = sender or None, messaging_service_sid or None
        self.price_countries = [code.upper() for code in price_countries]

    # ------------------------------------------------------------
    # HTTP
    # ------------------------------------------------------------

    def _call(self, method, url, data=None, params=None):
        """The decoded JSON answer of one call; errors as :class:`GatewayError`."""
        try:
            response = self.session.request(method, url, data=data, params=params, timeout=self.timeout)
        except requests.exceptions.RequestException as exc:
            raise request_failed(exc, url, self.timeout, secrets=(self.password,)) from exc
        if response.status_code >= 500:
            raise GatewayTransientError(f"{url} answered HTTP {response.status_code}", reason="http",
                                        status_code=response.status_code, url=url)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            error = GatewayResponseError(
                message=f"{url} answered HTTP {response.status_code} without a JSON object: is it Twilio's API?")
            # A 2xx answer we cannot read: the call may have done its work (a message created).
            error.maybe_sent = 200 <= response.status_code < 300
            raise error
        if response.status_code in (401, 403):
            raise GatewayAccessError(message=f"Twilio refused the credentials: {self._error_text(payload)}")
        if response.status_code >= 400:
            error = GatewayValidationError(message=f"Twilio refused the call: {self._error_text(payload)}")
            error.status_code = response.status_code
            error.code = str(payload.get("code") or "")
            raise error
        return payload

    @staticmethod
    def _error_text(payload):
        message = payload.get("message") or payload.get("title") or "no reason given"
        if payload.get("detail") and payload["detail"] != message:
            message = f"{message}: {payload['detail']}"
        code = payload.get("code")
        for item in payload.get("validation") or ():  # Prism and validating proxies name the field
            if isinstance(item, dict) and item.get("message"):
                message = f"{message}: {item['message']}"
        return f"{message} (error {code})" if code and code != payload.get("status") else str(message)

    # ------------------------------------------------------------
    # API
    # ------------------------------------------------------------

    def check_connection(self):
        """The balance: it needs valid credentials and reads nothing but the account."""
        return self.balance()

    def balance(self):
        payload = self._call("GET", f"{self.api_url}/Balance.json")
        try:
            return float(payload["balance"])
        except (KeyError, TypeError, ValueError) as exc:
            raise GatewayResponseError(message="Balance.json has no numeric 'balance'") from exc

    def prices(self):
        """The dearest outbound SMS price of each configured country (a carrier's price may be
        above the others'), in the account's currency; the default (countries not listed) is the
        dearest of them. None when no country is configured: the gateway's prices stay as they are."""
        if not self.price_countries:
            return None
        countries = {}
        for code in self.price_countries:
            payload = self._call("GET", f"{self.pricing_base}/v1/Messaging/Countries/{code}")
            found = [
                float(price.get("current_price") if price.get("current_price") is not None else price["base_price"])
                for carrier in payload.get("outbound_sms_prices") or ()
                for price in (carrier.get("prices") or ()) if isinstance(price, dict)
            ]
            if found:
                countries[code] = max(found)
        return {"default": max(countries.values(), default=0.0), "countries": countries}

    def message_form(self, message, webhook_url=None):
        """The form of one message's Messages.json call (``webhook_url``: our status callback
        route; the uuid is added to its query string, which the signature covers)."""
        form = {"To": message["number"], "Body": message["content"]}
        if message.get("sender") and not self.messaging_service_sid:
            form["From"] = message["sender"]
        elif self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        elif self.sender:
            form["From"] = self.sender
        if webhook_url:
            separator = "&" if "?" in webhook_url else "?"
            form["StatusCallback"] = f"{webhook_url}{separator}uuid={message['uuid']}"
        return form

    def send(self, messages, webhook_url=None):
        """One Messages.json call per message; ``{"uuid", "state", "credits", "provider_ref"}`` per
        message (credits 0: Twilio prices a message later, our price list stands in).

        ``state`` is ``unknown`` for the message whose call may have reached Twilio without an
        answer; the messages after it are not tried (``server_error``: sent later). A refused
        connection before anything was accepted, or bad credentials, fail the whole call."""
        messages = validate_messages(messages)
        if not (self.messaging_service_sid or self.sender or all(m.get("sender") for m in messages)):
            raise GatewayConfigurationError(message="a From number or a Messaging Service SID is required")
        results, stopped = [], False
        for message in messages:
            if stopped:
                results.append({"uuid": message["uuid"], "state": "server_error", "credits": 0.0})
                continue
            result = self._send_one(message, webhook_url, first=not results)
            # After a lost answer or a refusal for credit, the rest waits for a later batch.
            stopped = result["state"] in ("unknown", "insufficient_credit") or (
                result["state"] == "server_error" and "provider_ref" not in result)
            results.append(result)
        return results

    def _send_one(self, message, webhook_url, first):
        url = f"{self.api_url}/Messages.json"
        result = {"uuid": message["uuid"], "state": "accepted", "credits": 0.0}
        try:
            payload = self._call("POST", url, data=self.message_form(message, webhook_url))
        except GatewayTransientError as error:
            if first and not error.maybe_sent:
                raise
            _logger.warning("Twilio: %s (message %s)", error, message["uuid"])
            return dict(result, state="unknown" if error.maybe_sent else "server_error")
        except GatewayError as error:
            code = getattr(error, "code", "")
            if isinstance(error, GatewayValidationError) and code in WRONG_NUMBER_ERRORS:
                return dict(result, state="wrong_number_format")
            if isinstance(error, GatewayValidationError) and code in INVALID_SENDER_ERRORS:
                return dict(result, state="invalid_sender")
            # Twilio suspends an account out of funds (its calls are refused with 401/403: an
            # access error); a compatible service may answer 402 Payment Required per message.
            if getattr(error, "status_code", None) == 402:
                if first:
                    raise GatewayInsufficientCreditError(message=error.message) from error
                return dict(result, state="insufficient_credit")
            if getattr(error, "maybe_sent", False):
                _logger.warning("Twilio: %s (message %s)", error, message["uuid"])
                return dict(result, state="unknown")
            if first:
                raise
            # Twilio refused this call (it created no message), after accepting the ones before:
            # failing the whole batch would send those again. This one waits for a later batch.
            _logger.warning("Twilio refused message %s: %s", message["uuid"], error)
            return dict(result, state="server_error")
        sid = payload.get("sid")
        if not isinstance(sid, str) or not MESSAGE_SID_RE.match(sid):
            # Twilio took the call (2xx) but we cannot tell which message it made: never resend.
            _logger.warning("Twilio: answer without a message sid for %s", message["uuid"])
            return dict(result, state="unknown")
        if payload.get("status") == "failed":
            return dict(result, state="wrong_number_format" if str(payload.get("error_code")) in WRONG_NUMBER_ERRORS
                        else "server_error", provider_ref=sid)
        return dict(result, provider_ref=sid)

    def status(self, uuids):
        """Twilio finds a message by its SID, not by our uuid: see :meth:`status_of`."""
        raise self._unsupported("status query by our uuid (Twilio needs the message SID: status_of)")

    def status_of(self, messages):
        """The state of each message: ``GET .../Messages/{Sid}.json`` for those with a SID (Twilio
        no longer knowing a SID it gave, e.g. logs deleted, answers ``pending``); a lookup by
        recipient (:meth:`find_message`) for those whose send answer was lost. The answer of a
        message found that way carries its ``provider_ref``.

        A failure of the first call fails the whole query (nothing learnt); a later one ends it:
        the messages not asked yet are left out of the answer (asked again later)."""
        answers = {}
        for message in messages:
            uuid = message["uuid"].lower()
            try:
                answers[uuid] = self._status_one(message)
            except GatewayError as error:
                if not answers:
                    raise
                _logger.warning("Twilio: status query stopped after %s of %s messages: %s", len(answers),
                                len(messages), error)
                break
        return answers

    def _status_one(self, message):
        sid = message.get("provider_ref")
        if sid and MESSAGE_SID_RE.match(sid):
            try:
                payload = self._call("GET", f"{self.api_url}/Messages/{sid}.json")
            except GatewayValidationError as error:
                if getattr(error, "status_code", None) != 404:
                    raise
                return {"state": "pending", "at": None}
            state, at = message_state(payload)
            return {"state": state, "at": at}
        if message.get("number") and message.get("sent_at"):
            found = self.find_message(message["number"], message["sent_at"], message.get("sender"))
            if found is not None:
                state, at = message_state(found)
                return {"state": state, "at": at, "provider_ref": found["sid"]}
        return {"state": "pending", "at": None}

    def find_message(self, number, sent_at, sender=None):
        """The Message resource of the one outbound message to ``number`` that Twilio created
        around ``sent_at`` (naive UTC: when we recorded the send whose answer was lost, at most the
        timeout after Twilio created it), from ``sender`` (else this client's From) or from this
        client's Messaging Service; None when there is none, or more than one (no guess).

        ``GET .../Messages.json?To=`` newest first, :data:`LOOKUP_PAGES` pages at most, until the
        last page or messages older than the window."""
        earliest = sent_at - timedelta(seconds=self.timeout) - LOOKUP_MARGIN
        latest = sent_at + LOOKUP_MARGIN
        # As message_form sends it: a Messaging Service picks the number, else the message's sender or ours.
        expected_from = None if self.messaging_service_sid else sender or self.sender
        url, params = f"{self.api_url}/Messages.json", {"To": number, "PageSize": LOOKUP_PAGE_SIZE}
        seen, matches = set(), {}
        for _page in range(LOOKUP_PAGES):
            payload = self._call("GET", url, params=params)
            page = payload.get("messages")
            if not isinstance(page, list):
                raise GatewayResponseError(message="Messages.json answered no 'messages' list")
            new, oldest = 0, None
            for item in page:
                if not isinstance(item, dict) or not isinstance(item.get("sid"), str) or item["sid"] in seen:
                    continue
                seen.add(item["sid"])
                new += 1
                created = rfc2822_datetime(item.get("date_created"))
                oldest = created if oldest is None or (created and created < oldest) else oldest
                if (created and earliest <= created <= latest and item.get("to") == number
                        and str(item.get("direction") or "").startswith("outbound")
                        and (item.get("messaging_service_sid") == self.messaging_service_sid
                             if self.messaging_service_sid else item.get("from") == expected_from)):
                    matches[item["sid"]] = item
            next_uri = payload.get("next_page_uri")
            if len(page) < LOOKUP_PAGE_SIZE or not new or not next_uri or (oldest is not None and oldest < earliest):
                break  # the last page, or older than the window
            url, params = urllib.parse.urljoin(self.api_base + "/", next_uri), None
        if len(matches) != 1:
            if matches:
                _logger.warning("Twilio: %s messages to %s around %s, none taken for ours", len(matches),
                                number, sent_at)
            return None
        return next(iter(matches.values()))

    def parse_delivery_report(self, body, params=None):
        """See :func:`parse_status_callback` (``(uuid, state, at)``, dated on arrival)."""
        uuid, _sid, state, _code = parse_status_callback(params, self.account_sid)
        return uuid, state, None

    def parse_inbound(self, body, params=None):
        """See :func:`parse_inbound`."""
        return parse_inbound(params, self.account_sid)


def callback_params(query_string, form):
    """The parameters of a callback: our query string's (``uuid``) and the posted form's, as lists."""
    parsed = urllib.parse.parse_qs(query_string, keep_blank_values=True)
    params = {name: list(values) for name, values in parsed.items()}
    for name, values in form.items():
        params.setdefault(name, []).extend(values)
    return params
