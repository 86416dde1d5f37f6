"""The interface every SMS provider's client implements, and what they share (no Odoo import).

A provider's pure client lives in ``tools/providers/<code>.py`` and subclasses :class:`SmsProvider`;
its Odoo side (fields, views, how the client is built from the record) lives in
``models/sms_gateway_<code>.py``. The send cron, the credit check and the webhooks only talk to this
interface, and read what a provider can do from its :data:`SmsProvider.CAPABILITIES`.

Every failure of a provider call is a :class:`GatewayError`: :class:`GatewayTransientError` when the
call may be tried again later (its ``maybe_sent`` says whether the operator may have taken the
messages already), or the operator refused the whole call, with one subclass per refusal.

>>> Capabilities(balance=True).idempotent_send, Capabilities(balance=True).balance
(False, True)
>>> validate_messages([{"uuid": "a" * 32, "number": "+33612345678", "content": "Hi"}])[0]["sms_class"]
'standard'
"""

import abc
import re
import urllib.parse
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

import requests

MAX_BATCH = 1000
SMS_CLASSES = ("standard", "flash", "sim")
# Per-message result of a send call.
SEND_STATES = ("accepted", "insufficient_credit", "wrong_number_format", "invalid_sender", "server_error")
# Final states of a delivery report (and of a status query, which may also answer "pending" or "unknown").
REPORT_STATES = ("delivered", "undelivered", "expired", "rejected")
STATUS_STATES = ("pending", "unknown", *REPORT_STATES)
UUID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
COUNTRY_CODE_RE = re.compile(r"^[A-Za-z]{2}$")
QUERY_RE = re.compile(r"\?[^\s()'\"]+")


# ----------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------
class GatewayError(Exception):
    """The operator refused the whole call, or its answer was not what its API documents.

    ``name`` is the error name (``AccessError``, ``InsufficientCreditError``, ``ValidationError``,
    ``ServerError``) or another name a third-party gateway sent.
    """

    name = "ServerError"

    def __init__(self, name=None, message="", data=None):
        self.name = name or type(self).name
        self.message = message or self.name
        self.data = data or {}
        super().__init__(f"{self.name}: {self.message}")


class GatewayTransientError(GatewayError):
    """The call failed in a way worth trying again later (HTTP 5xx, connection error, timeout).

    ``reason`` is ``"timeout"``, ``"unreachable"`` or ``"http"`` (then ``status_code`` is set).
    ``maybe_sent`` is False only when the request certainly never reached the operator (connection
    refused, no route): a provider without idempotent send must not send again otherwise.
    Its text is the message alone (no error name: it is no answer of the operator).
    """

    name = "TransientError"

    def __init__(self, message, reason="unreachable", status_code=None, url=None, maybe_sent=True):
        super().__init__(message=message)
        self.reason = reason
        self.status_code = status_code
        self.url = url
        self.maybe_sent = maybe_sent

    def __str__(self):
        return self.message


class GatewayAccessError(GatewayError):
    """Bad or missing credentials."""

    name = "AccessError"


class GatewayInsufficientCreditError(GatewayError):
    """The account cannot pay for even the first message of the batch."""

    name = "InsufficientCreditError"


class GatewayValidationError(GatewayError):
    """The operator found the call's parameters malformed."""

    name = "ValidationError"


class GatewayServerError(GatewayError):
    """The operator failed on its side."""

    name = "ServerError"


class GatewayResponseError(GatewayServerError):
    """The answer is not what the operator's API documents (not JSON, wrong shape, HTTP 4xx...)."""


class GatewayConfigurationError(GatewayError):
    """The gateway cannot be called as configured (missing or invalid URL or credentials)."""

    name = "ConfigurationError"


class GatewayUnsupportedError(GatewayError):
    """The operator offers no such function (see the provider's :data:`~SmsProvider.CAPABILITIES`)."""

    name = "UnsupportedError"


ERROR_CLASSES = {
    cls.name: cls for cls in (GatewayAccessError, GatewayInsufficientCreditError, GatewayValidationError)
}
ERROR_CLASSES["ServerError"] = GatewayServerError


def gateway_error(name, message, data=None):
    """Build the :class:`GatewayError` subclass matching ``name`` (dotted names such as
    ``odoo.exceptions.AccessError`` count by their last part, as Odoo's IAP client does).

    >>> type(gateway_error("odoo.exceptions.AccessError", "bad token")).__name__
    'GatewayAccessError'
    """
    short_name = (name or "ServerError").rpartition(".")[-1]
    return ERROR_CLASSES.get(short_name, GatewayError)(short_name, message, data)


def request_failed(exc, url, timeout, secrets=()):
    """The :class:`GatewayTransientError` (or :class:`GatewayConfigurationError`) of a ``requests``
    exception raised by a call to ``url``. Only a refused or unroutable connection is known not to
    have reached the operator (``maybe_sent`` False). ``secrets`` (credentials sent in the query
    string) are masked in the text, which ends up in logs and on traces."""
    error = _request_failed(exc, url, timeout)
    # The query string of a GET carries credentials, numbers and texts: never in logs or traces.
    error.message = QUERY_RE.sub("?...", error.message)
    for secret in secrets:
        if secret:
            for form in {secret, urllib.parse.quote_plus(secret), urllib.parse.quote(secret, safe="")}:
                error.message = error.message.replace(form, "***")
    return error


def _request_failed(exc, url, timeout):
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return GatewayTransientError(
            f"no connection to {url} within {timeout} seconds", reason="timeout", url=url, maybe_sent=False
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return GatewayTransientError(f"no answer from {url} within {timeout} seconds", reason="timeout", url=url)
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                  | requests.exceptions.InvalidSchema):
        return GatewayConfigurationError(message=f"invalid URL {url}: {exc}")
    refused = isinstance(exc, requests.exceptions.ConnectionError) and connection_refused(exc)
    return GatewayTransientError(f"cannot reach {url}: {exc}", reason="unreachable", url=url, maybe_sent=not refused)


def connection_refused(exc):
    """Whether ``exc`` (a ``requests`` ConnectionError, or what wraps one) failed while connecting:
    then nothing was sent."""
    seen, cause = set(), exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError) or type(cause).__name__ == "NewConnectionError":
            return True
        reason = getattr(cause, "reason", None)
        if isinstance(reason, BaseException) and id(reason) not in seen:
            cause = reason
            continue
        cause = cause.__cause__ or cause.__context__ or (cause.args[0] if cause.args and isinstance(
            cause.args[0], BaseException) else None)
    return False


# ----------------------------------------------------------------------------------------------------------
# Values shared by providers
# ----------------------------------------------------------------------------------------------------------
def parse_utc_datetime(value):
    """Parse an ISO 8601 date-time (``2024-05-01T12:00:00.123Z``, ``+02:00`` offsets, or naive = UTC)
    into a naive UTC ``datetime``, as Odoo stores them. Raise ValueError when it is not one.

    >>> parse_utc_datetime("2024-05-01T14:00:00+02:00")
    datetime.datetime(2024, 5, 1, 12, 0)
    """
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


# Dates a callback may carry: none before this, none later than the receiver's clock plus this skew.
EARLIEST_CALLBACK_DATE = datetime(2000, 1, 1)
MAX_CLOCK_SKEW = timedelta(hours=1)


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


def storable_string(payload, key, required=True):
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


# ----------------------------------------------------------------------------------------------------------
# The interface
# ----------------------------------------------------------------------------------------------------------
class Capabilities(NamedTuple):
    """What an operator's API offers. ``idempotent_send``: a send repeated after a lost answer is
    never delivered twice (the operator takes an idempotency key, or lets us find a message by our
    reference); without it, a message whose send answer was lost waits in "unknown" until a report
    or a status query settles it, and is never sent again blindly."""

    balance: bool = False  # the account's credits can be read
    prices: bool = False  # a price list per destination can be read
    idempotent_send: bool = False
    delivery_reports: bool = False  # the operator posts delivery reports to us
    status_query: bool = False  # the state of a message can be asked by our reference
    inbound: bool = False  # replies (STOP/START) reach us
    sender_sync: bool = False  # senders can be listed and requested
    message_classes: bool = False  # flash / SIM classes are honoured
    scheduling: bool = False  # the operator can hold a message until a given time


CAPABILITY_NAMES = Capabilities._fields


class SmsProvider(abc.ABC):
    """A client of one account at one operator. Use it as a context manager (or :meth:`close` it).

    Messages are dicts ``{uuid, number, content, sender, sms_class}`` (see :func:`validate_messages`);
    ``uuid`` is our reference of the message for life.
    """

    CODE = None
    CAPABILITIES = Capabilities()

    def __init__(self, timeout=10, session=None):
        """Keep one ``requests.Session`` (connection reuse): ``session`` when the caller passes one
        (it closes it), else one of our own, closed by :meth:`close`."""
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

    def _unsupported(self, what):
        return GatewayUnsupportedError(message=f"{type(self).__name__} offers no {what}")

    def check_connection(self):
        """Check that the operator answers and accepts the credentials; return the balance when the
        operator has a balance API, else None. Raise :class:`GatewayError` otherwise."""
        return self.balance() if self.CAPABILITIES.balance else None

    def balance(self):
        """The account's credits (float). Providers without a balance API raise
        :class:`GatewayUnsupportedError`: the gateway record's credit budget stands in."""
        raise self._unsupported("balance API")

    def prices(self):
        """``{"default": float, "countries": {"FR": float, ...}}``: credits per SMS part."""
        raise self._unsupported("price API")

    @abc.abstractmethod
    def send(self, messages, webhook_url=None):
        """Send one batch; return one ``{"uuid", "state", "credits"}`` per message, in order
        (``state`` in :data:`SEND_STATES`). Raise :class:`GatewayError` when the whole call fails."""

    def status(self, uuids):
        """``{uuid: {"state": <STATUS_STATES>, "at": naive UTC datetime or None}}`` of messages we sent."""
        raise self._unsupported("status query")

    def status_of(self, messages):
        """:meth:`status` of messages described by what their traces know: ``messages`` is a list of
        ``{"uuid", "provider_ref", "number", "sender", "sent_at"}`` (``provider_ref``: the operator's
        own id answered at send, or None; ``sent_at``: naive UTC). An answer may also carry the
        ``provider_ref`` it found. Operators that find a message by their own id, not ours, override
        it; by default, :meth:`status` of the uuids."""
        return self.status([message["uuid"] for message in messages])

    def parse_delivery_report(self, body, params=None):
        """``(uuid, state, at)`` of a delivery report posted to us (``body``: raw bytes, ``params``:
        query string and form values); raise ValueError when it is not one. Authenticity is checked
        before, by the provider's own scheme (a signature, or a secret in the URL)."""
        raise self._unsupported("delivery reports")

    def parse_inbound(self, body, params=None):
        """``{"from", "to", "body", "at"}`` of an inbound message posted to us; ValueError when not one."""
        raise self._unsupported("inbound messages")

    def senders(self):
        """``[{"name", "state"}]``: the senders the account has at the operator."""
        raise self._unsupported("sender list")

    def request_sender(self, name, description="", reason=""):
        """Ask the operator to allow sender ``name``; return its state."""
        raise self._unsupported("sender request")
