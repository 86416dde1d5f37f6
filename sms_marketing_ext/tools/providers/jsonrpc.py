"""Provider ``jsonrpc``: the project's IAP-style JSON-RPC gateway protocol (``docs/gateway-protocol.md``).

Plain classes and functions (no Odoo import), in the spirit of stock ``addons/sms/tools/sms_api.py``:

* :class:`SmsGatewayApi` speaks JSON-RPC 2.0 over HTTP POST to ``<base>/api/sms/1/balance|prices|send|status``
  with one kept-alive ``requests.Session``;
* :func:`sign` / :func:`verify_signature` compute and check the ``X-SMS-Signature`` of callbacks;
* :func:`parse_delivery_report` / :func:`parse_inbound` validate the callbacks' JSON bodies.

Sending is idempotent: the gateway never sends or charges an accepted uuid twice, so a batch whose
answer was lost is simply sent again with the same uuids.
"""

import hashlib
import hmac
import json
import logging
import uuid as uuid_lib

import requests

from .base import (
    COUNTRY_CODE_RE,
    REPORT_STATES,
    SEND_STATES,
    STATUS_STATES,
    UUID_RE,
    Capabilities,
    GatewayConfigurationError,
    GatewayResponseError,
    GatewayTransientError,
    SmsProvider,
    callback_datetime,
    gateway_error,
    parse_utc_datetime,
    request_failed,
    storable_string,
    validate_messages,
)

_logger = logging.getLogger(__name__)

API_PATH = "/api/sms/1"
PROTOCOL_VERSION = "1.2"
SIGNATURE_HEADER = "X-SMS-Signature"
MAX_STATUS_BATCH = 1000


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


def parse_delivery_report(body, now=None):
    """Validate a delivery-report body and return ``(uuid, state, at)``; ``at`` is a naive UTC datetime
    (see :func:`~.base.callback_datetime`), or None when the report carries no date. Raise ValueError
    when the body is not a delivery report."""
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
    (replies are ordered by it), is a naive UTC datetime (see :func:`~.base.callback_datetime`). Raise
    ValueError when the body is not an inbound message."""
    payload = _json_object(body)
    sender, text = storable_string(payload, "from"), storable_string(payload, "body")
    to = storable_string(payload, "to", required=False)
    if payload.get("at") is None:
        raise ValueError("'at' (the date of the message, ISO 8601) is required")
    return {"from": sender, "to": to or "", "body": text, "at": callback_datetime(payload["at"], now)}


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GatewayResponseError(message=f"{what} must be a number, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------------------------------
# The JSON-RPC client
# ----------------------------------------------------------------------------------------------------------
class SmsGatewayApi(SmsProvider):
    """Client of one gateway account: ``balance()``, ``prices()``, ``send()`` and ``status()``.

    Keeps one ``requests.Session`` (connection reuse); :meth:`close` it, or use the object as a
    context manager, when it is not passed in by the caller.
    """

    CODE = "jsonrpc"
    CAPABILITIES = Capabilities(
        balance=True, prices=True, idempotent_send=True, delivery_reports=True, status_query=True,
        inbound=True, message_classes=True,
    )

    def __init__(self, base_url, account_token, timeout=10, session=None):
        if not base_url or not isinstance(base_url, str):
            raise GatewayConfigurationError(message="the gateway has no base URL")
        if not base_url.startswith(("http://", "https://")):
            raise GatewayConfigurationError(message=f"the base URL must start with http:// or https://: {base_url}")
        if not account_token:
            raise GatewayConfigurationError(message="the gateway has no account token")
        super().__init__(timeout=timeout, session=session)
        self.base_url = base_url.rstrip("/")
        self.account_token = account_token

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

    def status(self, uuids):
        """Ask the state of messages by uuid (protocol 1.1): ``{uuid: {"state", "at"}}`` with ``state``
        one of ``pending`` (accepted, no final report yet), ``unknown`` (the gateway never accepted
        this uuid) or a report state, ``at`` the report's date (naive UTC) or None."""
        uuids = [uuid.lower() for uuid in uuids]
        for uuid in uuids:
            if not UUID_RE.match(uuid):
                raise ValueError(f"not a message uuid: {uuid!r}")
        if len(uuids) > MAX_STATUS_BATCH:
            raise ValueError(f"at most {MAX_STATUS_BATCH} uuids per status call, got {len(uuids)}")
        if not uuids:
            return {}
        result = self._call("status", {"uuids": uuids})
        if not isinstance(result, list):
            raise GatewayResponseError(message=f"status: expected a list, got {type(result).__name__}")
        states = {}
        for item in result:
            uuid = item.get("uuid") if isinstance(item, dict) else None
            if not isinstance(uuid, str) or uuid.lower() not in uuids:
                raise GatewayResponseError(message=f"status: unexpected item {item!r}")
            if item.get("state") not in STATUS_STATES:
                raise GatewayResponseError(message=f"status: unknown state {item.get('state')!r} for {uuid}")
            try:
                at = parse_utc_datetime(item["at"]) if item.get("at") else None
            except ValueError as exc:
                raise GatewayResponseError(message=f"status: bad date for {uuid}: {exc}") from exc
            states[uuid.lower()] = {"state": item["state"], "at": at}
        for uuid in uuids:
            states.setdefault(uuid, {"state": "unknown", "at": None})
        return states

    def parse_delivery_report(self, body, params=None):
        """See :func:`parse_delivery_report`."""
        return parse_delivery_report(body)

    def parse_inbound(self, body, params=None):
        """See :func:`parse_inbound`."""
        return parse_inbound(body)

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
        except requests.exceptions.RequestException as exc:  # refused/reset, DNS, TLS, timeouts...
            raise request_failed(exc, url, self.timeout) from exc
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


