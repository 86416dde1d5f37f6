"""Client side of the IAP-style SMS gateway protocol, version 1 (``/work/shared/gateway-protocol.md``).

Plain classes and functions (no Odoo import), in the spirit of stock ``addons/sms/tools/sms_api.py``:

* :class:`SmsGatewayApi` speaks JSON-RPC 2.0 over HTTP POST to ``<base>/api/sms/1/balance|prices|send``
  with one kept-alive ``requests.Session``;
* :func:`iap_state_to_protocol` maps stock Odoo IAP's send states to the protocol's (the adapter
  that sends through IAP needs Odoo: ``models/sms_gateway_odoo_iap.py``);
* :func:`sign` / :func:`verify_signature` compute and check the ``X-SMS-Signature`` of callbacks;
* :func:`parse_delivery_report` / :func:`parse_inbound` validate the callbacks' JSON bodies.

Errors: every failure of a gateway call is a :class:`GatewayError`: :class:`GatewayTransientError`
(HTTP 5xx, connection errors, timeouts: retry later with the same uuids), or the gateway refused the
whole call, or answered something that is not the protocol, with one subclass per protocol error name.
"""

import hashlib
import hmac
import json
import logging
import re
import uuid as uuid_lib
from datetime import datetime, timedelta, timezone

import requests

_logger = logging.getLogger(__name__)

API_PATH = "/api/sms/1"
MAX_BATCH = 1000
SIGNATURE_HEADER = "X-SMS-Signature"
SMS_CLASSES = ("standard", "flash", "sim")
SEND_STATES = ("accepted", "insufficient_credit", "wrong_number_format", "invalid_sender", "server_error")
REPORT_STATES = ("delivered", "undelivered", "expired", "rejected")
UUID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
COUNTRY_CODE_RE = re.compile(r"^[A-Za-z]{2}$")


# ----------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------
class GatewayError(Exception):
    """The gateway refused the whole call (a JSON-RPC error), or its answer was not the protocol.

    ``name`` is the protocol's error name (``AccessError``, ``InsufficientCreditError``,
    ``ValidationError``, ``ServerError``) or another name a third-party gateway sent.
    """

    name = "ServerError"

    def __init__(self, name=None, message="", data=None):
        self.name = name or type(self).name
        self.message = message or self.name
        self.data = data or {}
        super().__init__(f"{self.name}: {self.message}")


class GatewayTransientError(GatewayError):
    """The call may or may not have reached the gateway (HTTP 5xx, connection error, timeout).

    Retry later with the same message uuids: the gateway never charges an accepted uuid twice.
    ``reason`` is ``"timeout"``, ``"unreachable"`` or ``"http"`` (then ``status_code`` is set).
    Its text is the message alone (no error name: it is no answer of the gateway).
    """

    name = "TransientError"

    def __init__(self, message, reason="unreachable", status_code=None, url=None):
        super().__init__(message=message)
        self.reason = reason
        self.status_code = status_code
        self.url = url

    def __str__(self):
        return self.message


class GatewayAccessError(GatewayError):
    """Bad or missing account token."""

    name = "AccessError"


class GatewayInsufficientCreditError(GatewayError):
    """The account cannot pay for even the first message of the batch."""

    name = "InsufficientCreditError"


class GatewayValidationError(GatewayError):
    """The gateway found the call's params malformed."""

    name = "ValidationError"


class GatewayServerError(GatewayError):
    """The gateway failed on its side."""

    name = "ServerError"


class GatewayResponseError(GatewayServerError):
    """The answer is not a protocol answer (not JSON, not JSON-RPC, wrong result shape, HTTP 4xx...)."""


class GatewayConfigurationError(GatewayError):
    """The gateway cannot be called as configured (missing or invalid base URL or token)."""

    name = "ConfigurationError"


ERROR_CLASSES = {
    cls.name: cls for cls in (GatewayAccessError, GatewayInsufficientCreditError, GatewayValidationError)
}
ERROR_CLASSES["ServerError"] = GatewayServerError


def gateway_error(name, message, data=None):
    """Build the :class:`GatewayError` subclass matching ``name`` (dotted names such as
    ``odoo.exceptions.AccessError`` count by their last part, as Odoo's IAP client does)."""
    short_name = (name or "ServerError").rpartition(".")[-1]
    return ERROR_CLASSES.get(short_name, GatewayError)(short_name, message, data)


# ----------------------------------------------------------------------------------------------------------
# Signatures of callbacks
# ----------------------------------------------------------------------------------------------------------
def sign(secret, body):
    """Return the ``X-SMS-Signature`` value of ``body``: hex HMAC-SHA256 keyed with ``secret``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret, body, header_value):
    """Tell, in constant time, whether ``header_value`` is the signature of ``body`` under ``secret``.

    A missing secret or header never verifies.
    """
    if not secret or not header_value or not isinstance(header_value, str):
        return False
    expected = sign(secret, body).encode()
    return hmac.compare_digest(expected, header_value.strip().lower().encode("utf-8", "replace"))


# ----------------------------------------------------------------------------------------------------------
# Callback bodies
# ----------------------------------------------------------------------------------------------------------
# Dates a callback may carry: none before this, none later than the receiver's clock plus this skew.
EARLIEST_CALLBACK_DATE = datetime(2000, 1, 1)
MAX_CLOCK_SKEW = timedelta(hours=1)


def parse_utc_datetime(value):
    """Parse an ISO 8601 date-time (``2024-05-01T12:00:00.123Z``, ``+02:00`` offsets, or naive = UTC)
    into a naive UTC ``datetime``, as Odoo stores them. Raise ValueError when it is not one."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not an ISO 8601 date-time: {value!r}")
    text = value.strip()
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError(f"date-time out of range: {value!r}") from exc
    return parsed


def callback_datetime(value, now=None):
    """:func:`parse_utc_datetime`, also refusing dates no real message has: before
    :data:`EARLIEST_CALLBACK_DATE` or after ``now`` (naive UTC, default the current time) plus
    :data:`MAX_CLOCK_SKEW`. A STOP dated in the year 9999 would otherwise outrank every later START.

    >>> callback_datetime("2024-05-01T14:00:00+02:00", now=datetime(2024, 5, 1, 12))
    datetime.datetime(2024, 5, 1, 12, 0)
    >>> callback_datetime("2024-05-01T14:00:00Z", now=datetime(2024, 5, 1, 12))
    Traceback (most recent call last):
    ...
    ValueError: 'at' is in the future: '2024-05-01T14:00:00Z'
    """
    parsed = parse_utc_datetime(value)
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    if parsed < EARLIEST_CALLBACK_DATE:
        raise ValueError(f"'at' is before {EARLIEST_CALLBACK_DATE.year}: {value!r}")
    if parsed > now + MAX_CLOCK_SKEW:
        raise ValueError(f"'at' is in the future: {value!r}")
    return parsed


def _json_object(body):
    try:
        payload = json.loads(body)
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"the body is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise ValueError("the body is not JSON: nested too deeply") from exc
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    return payload


def _string(payload, key, required=True):
    """``payload[key]`` when it is a string PostgreSQL can store (no NUL, no lone surrogate)."""
    value = payload.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string")
    if "\x00" in value:
        raise ValueError(f"'{key}' contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"'{key}' contains a lone surrogate (invalid UTF-16 escape)") from exc
    return value


def parse_delivery_report(body, now=None):
    """Validate a delivery-report body and return ``(uuid, state, at)``; ``at`` is a naive UTC datetime
    (see :func:`callback_datetime`), or None when the report carries no date. Raise ValueError when the
    body is not a delivery report."""
    payload = _json_object(body)
    uuid = payload.get("uuid")
    if not isinstance(uuid, str) or not UUID_RE.match(uuid):
        raise ValueError("uuid must be 32 hex characters")
    state = payload.get("state")
    if not isinstance(state, str) or state not in REPORT_STATES:
        raise ValueError(f"unknown delivery state {state!r}; expected one of {', '.join(REPORT_STATES)}")
    at = payload.get("at")
    return uuid.lower(), state, callback_datetime(at, now) if at is not None else None


def parse_inbound(body, now=None):
    """Validate an inbound-message body and return ``{"from", "to", "body", "at"}``; ``at``, required
    (replies are ordered by it), is a naive UTC datetime (see :func:`callback_datetime`). Raise
    ValueError when the body is not an inbound message."""
    payload = _json_object(body)
    sender, text = _string(payload, "from"), _string(payload, "body")
    to = _string(payload, "to", required=False)
    if payload.get("at") is None:
        raise ValueError("'at' (the date of the message, ISO 8601) is required")
    return {"from": sender, "to": to or "", "body": text, "at": callback_datetime(payload["at"], now)}


# ----------------------------------------------------------------------------------------------------------
# Messages of a send call
# ----------------------------------------------------------------------------------------------------------
def validate_messages(messages):
    """Check a ``send`` batch on the client side and return it normalised (``sender`` None when empty,
    ``sms_class`` defaulting to ``standard``). Raise ValueError on a malformed batch: that is a bug of
    the caller, never something to retry."""
    if not isinstance(messages, list | tuple):
        raise ValueError("messages must be a list")
    if len(messages) > MAX_BATCH:
        raise ValueError(f"a batch holds at most {MAX_BATCH} messages, got {len(messages)}")
    normalised, seen = [], set()
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise ValueError(f"{where} must be a dict")
        uuid = message.get("uuid")
        if not isinstance(uuid, str) or not UUID_RE.match(uuid):
            raise ValueError(f"{where}.uuid must be 32 hex characters, got {uuid!r}")
        if uuid in seen:
            raise ValueError(f"{where}.uuid {uuid} appears twice in the batch")
        seen.add(uuid)
        number, content = message.get("number"), message.get("content")
        if not isinstance(number, str) or not number:
            raise ValueError(f"{where}.number must be a non-empty string")
        if not isinstance(content, str):
            raise ValueError(f"{where}.content must be a string")
        sender = message.get("sender") or None
        if sender is not None and not isinstance(sender, str):
            raise ValueError(f"{where}.sender must be a string or None")
        sms_class = message.get("sms_class") or "standard"
        if sms_class not in SMS_CLASSES:
            raise ValueError(f"{where}.sms_class must be one of {', '.join(SMS_CLASSES)}, got {sms_class!r}")
        normalised.append(
            {"uuid": uuid, "number": number, "content": content, "sender": sender, "sms_class": sms_class}
        )
    return normalised


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GatewayResponseError(message=f"{what} must be a number, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------------------------------
# The JSON-RPC client
# ----------------------------------------------------------------------------------------------------------
class SmsGatewayApi:
    """Client of one gateway account: ``balance()``, ``prices()`` and ``send()``.

    Keeps one ``requests.Session`` (connection reuse); :meth:`close` it, or use the object as a
    context manager, when it is not passed in by the caller.
    """

    def __init__(self, base_url, account_token, timeout=10, session=None):
        if not base_url or not isinstance(base_url, str):
            raise GatewayConfigurationError(message="the gateway has no base URL")
        if not base_url.startswith(("http://", "https://")):
            raise GatewayConfigurationError(message=f"the base URL must start with http:// or https://: {base_url}")
        if not account_token:
            raise GatewayConfigurationError(message="the gateway has no account token")
        self.base_url = base_url.rstrip("/")
        self.account_token = account_token
        self.timeout = timeout
        self._own_session = session is None
        self.session = session or requests.Session()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Close the session when this object created it."""
        if self._own_session:
            self.session.close()

    # -- protocol methods ---------------------------------------------------------------------------------
    def balance(self):
        """Return the account's credits."""
        result = self._call("balance", {})
        if not isinstance(result, dict) or "credits" not in result:
            raise GatewayResponseError(message=f"balance: expected {{'credits': <number>}}, got {result!r}")
        return _number(result["credits"], "balance: credits")

    def prices(self):
        """Return ``{"default": float, "countries": {"FR": float, ...}}`` (credits per SMS part)."""
        result = self._call("prices", {})
        if not isinstance(result, dict) or not isinstance(result.get("countries", {}), dict):
            raise GatewayResponseError(
                message=f"prices: expected {{'default': <number>, 'countries': {{...}}}}, got {result!r}"
            )
        countries = {}
        for code, price in (result.get("countries") or {}).items():
            if not isinstance(code, str) or not COUNTRY_CODE_RE.match(code):
                raise GatewayResponseError(message=f"prices: {code!r} is not a 2-letter country code")
            countries[code.upper()] = _number(price, f"prices: price of {code}")
        return {"default": _number(result.get("default"), "prices: default"), "countries": countries}

    def send(self, messages, webhook_url=None):
        """Send one batch (at most 1000 messages, each ``{uuid, number, content, sender, sms_class}``).

        Return one ``{"uuid", "state", "credits"}`` per message, in the same order. Raise ValueError
        on a malformed batch, :class:`GatewayError` when the gateway refuses the whole call, its
        subclass :class:`GatewayTransientError` when the outcome is unknown (retry with the same uuids).
        """
        messages = validate_messages(messages)
        if not messages:
            return []
        params = {"messages": messages}
        if webhook_url:
            params["webhook_url"] = webhook_url
        result = self._call("send", params)
        if not isinstance(result, list) or len(result) != len(messages):
            raise GatewayResponseError(
                message=f"send: expected a list of {len(messages)} results, got "
                f"{len(result) if isinstance(result, list) else type(result).__name__}"
            )
        results = []
        for message, item in zip(messages, result, strict=True):
            if not isinstance(item, dict) or str(item.get("uuid", "")).lower() != message["uuid"].lower():
                raise GatewayResponseError(
                    message=f"send: the result for {message['uuid']} is missing or out of order: {item!r}"
                )
            if item.get("state") not in SEND_STATES:
                raise GatewayResponseError(message=f"send: unknown state {item.get('state')!r} for {message['uuid']}")
            charged = item.get("credits")
            results.append(
                {
                    "uuid": message["uuid"],
                    "state": item["state"],
                    "credits": 0.0 if charged is None else _number(charged, f"send: credits of {message['uuid']}"),
                }
            )
        return results

    # -- transport ----------------------------------------------------------------------------------------
    def _url(self, method):
        return f"{self.base_url}{API_PATH}/{method}"

    def _call(self, method, params):
        url = self._url(method)
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": uuid_lib.uuid4().hex,
            "params": {**params, "account_token": self.account_token},
        }
        try:
            response = self.session.post(
                url,
                data=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except requests.exceptions.Timeout as exc:
            raise GatewayTransientError(
                f"no answer from {url} within {self.timeout} seconds", reason="timeout", url=url
            ) from exc
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise GatewayConfigurationError(message=f"invalid gateway URL {url}: {exc}") from exc
        except requests.exceptions.RequestException as exc:  # connection refused/reset, DNS, TLS, broken body...
            raise GatewayTransientError(f"cannot reach {url}: {exc}", reason="unreachable", url=url) from exc
        return self._unwrap(url, response)

    @staticmethod
    def _unwrap(url, response):
        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise GatewayTransientError(
                f"{url} answered HTTP {status}: try again later", reason="http", status_code=status, url=url
            )
        if status != 200:
            raise GatewayResponseError(
                message=f"{url} answered HTTP {status}: is the base URL the gateway's? ({response.text[:200]!r})"
            )
        try:
            answer = response.json()
        except ValueError as exc:
            raise GatewayResponseError(
                message=f"{url} did not answer JSON ({response.text[:200]!r}): is the base URL the gateway's?"
            ) from exc
        if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
            raise GatewayResponseError(message=f"{url} did not answer a JSON-RPC response: {str(answer)[:200]}")
        error = answer.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise GatewayResponseError(message=f"{url} answered a malformed JSON-RPC error: {error!r}")
            data = error.get("data") if isinstance(error.get("data"), dict) else {}
            name = data.get("name") if isinstance(data.get("name"), str) else "ServerError"
            message = data.get("message") or error.get("message") or name
            raise gateway_error(name, str(message), data)
        return answer["result"]


# ----------------------------------------------------------------------------------------------------------
# Stock Odoo IAP's send states (the adapter itself: models/sms_gateway_odoo_iap.py)
# ----------------------------------------------------------------------------------------------------------
IAP_SUCCESS_STATES = ("success", "processing")
IAP_TO_PROTOCOL_STATE = {
    "insufficient_credit": "insufficient_credit",
    "unregistered": "insufficient_credit",  # no usable IAP account: kept until the account is fixed
    "wrong_number_format": "wrong_number_format",
    "country_not_supported": "wrong_number_format",  # never deliverable through IAP
    "registration_needed": "wrong_number_format",  # idem, until the country registration is done
    "duplicate_message": "wrong_number_format",  # IAP dropped it: same number twice in the batch
    "server_error": "server_error",
}


def iap_state_to_protocol(iap_state, failure_types):
    """Map a stock IAP send state to ``(protocol state, stock failure type or False)``.

    ``failure_types`` is ``sms.sms.IAP_TO_SMS_FAILURE_TYPE``; unknown IAP states are a retriable
    ``server_error`` with failure type ``unknown``.
    """
    if iap_state in IAP_SUCCESS_STATES:
        return "accepted", False
    state = IAP_TO_PROTOCOL_STATE.get(iap_state, "server_error")
    return state, failure_types.get(iap_state, "unknown")
