"""The protocol's vocabulary, shared by every other module of the gateway (standard library only).

What a client of the IAP-style SMS gateway protocol (version 1) sees: the routes, the message
classes and report states, the whole-call errors and their JSON-RPC envelope, how a ``/send``
request is validated, how a text is counted in SMS parts and which country a number is charged
for, and how callbacks are signed. Nothing here stores, serves or posts anything.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timezone

MAX_BATCH = 1000
MICRO = 1_000_000  # balances and charges are stored as integer micro-credits: no float drift
SIGNATURE_HEADER = "X-SMS-Signature"
API_ROUTES = ("balance", "prices", "send", "status")
PROTOCOL_VERSION = "1.2"
MAX_STATUS_UUIDS = 1000
SMS_CLASSES = frozenset({"standard", "flash", "sim"})
REPORT_STATES = ("delivered", "undelivered", "expired", "rejected")
NUMBER_RE = re.compile(r"\+[0-9]{8,15}")
UUID_RE = re.compile(r"[0-9a-fA-F]{32}")

# E.164 country calling code -> ISO 3166 alpha-2. Calling codes are prefix-free, so the first match wins.
# fmt: off
COUNTRY_CODES = {
    "1": "US", "7": "RU", "20": "EG", "27": "ZA", "30": "GR", "31": "NL", "32": "BE", "33": "FR", "34": "ES",
    "36": "HU", "39": "IT", "40": "RO", "41": "CH", "43": "AT", "44": "GB", "45": "DK", "46": "SE", "47": "NO",
    "48": "PL", "49": "DE", "51": "PE", "52": "MX", "54": "AR", "55": "BR", "56": "CL", "57": "CO", "60": "MY",
    "61": "AU", "62": "ID", "63": "PH", "64": "NZ", "65": "SG", "66": "TH", "81": "JP", "82": "KR", "84": "VN",
    "86": "CN", "90": "TR", "91": "IN", "92": "PK", "212": "MA", "213": "DZ", "216": "TN", "221": "SN",
    "225": "CI", "234": "NG", "237": "CM", "254": "KE", "351": "PT", "352": "LU", "353": "IE", "354": "IS",
    "356": "MT", "358": "FI", "359": "BG", "370": "LT", "371": "LV", "372": "EE", "377": "MC", "380": "UA",
    "385": "HR", "386": "SI", "420": "CZ", "421": "SK", "852": "HK", "886": "TW", "966": "SA", "971": "AE",
    "972": "IL", "974": "QA",
}
# fmt: on

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION
MAX_BMP_CODE_POINT = 0xFFFF


# --------------------------------------------------------------------------------------------------------------
# Errors (whole-call failures, answered as JSON-RPC errors)
# --------------------------------------------------------------------------------------------------------------
class GatewayError(Exception):
    """A failure of a whole call, answered as a JSON-RPC error whose ``data.name`` is :attr:`name`."""

    name = "ServerError"


class AccessError(GatewayError):
    """Bad or missing account token."""

    name = "AccessError"


class InsufficientCreditError(GatewayError):
    """The account cannot pay for even the first message of the batch."""

    name = "InsufficientCreditError"


class ValidationError(GatewayError):
    """Malformed request or params."""

    name = "ValidationError"


def rpc_error(rpc_id, error: GatewayError) -> dict:
    """Build the JSON-RPC error envelope of the protocol (code 200, ``data.name`` = the error name)."""
    message = str(error) or error.name
    return {
        "jsonrpc": "2.0",
        "id": rpc_id,
        "error": {"code": 200, "message": message, "data": {"name": error.name, "message": message}},
    }


# --------------------------------------------------------------------------------------------------------------
# Small helpers: time, micro-credits, signatures, SMS parts, countries
# --------------------------------------------------------------------------------------------------------------
def utc_now_iso() -> str:
    """Return the current UTC time as ISO 8601 with milliseconds and a ``Z`` suffix."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_micro(credits: float) -> int:
    """Convert a credit amount to integer micro-credits."""
    return round(float(credits) * MICRO)


def from_micro(micro: int) -> float:
    """Convert integer micro-credits back to a credit amount."""
    return micro / MICRO


def sign(secret: str, body: bytes) -> str:
    """Return the ``X-SMS-Signature`` value: hex HMAC-SHA256 of the raw body keyed with ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _is_astral(char: str) -> bool:
    return ord(char) > MAX_BMP_CODE_POINT


def sms_parts(content: str) -> int:
    """Count the SMS parts ``content`` is charged for (3GPP TS 23.038, same rules as the addon's sms_segments).

    GSM-7 when every character is in the basic or extension table (an extension character costs 2 septets),
    else UCS-2 in UTF-16 units (a character outside the BMP costs 2). One part holds 160 septets / 70 units;
    longer texts use parts of 153 / 67 and a 2-unit item is never split across two parts. An empty text is
    charged as one part.
    """
    if set(content) <= GSM7_ALL:
        single, multi, is_double = 160, 153, GSM7_EXTENSION.__contains__
        doubles = sum(content.count(char) for char in GSM7_EXTENSION)
    else:
        single, multi, is_double = 70, 67, _is_astral
        doubles = len(content.encode("utf-16-le")) // 2 - len(content)
    length = len(content) + doubles
    if length <= single:
        return 1
    if not doubles:
        return -(-length // multi)
    parts, used = 1, 0
    for char in content:
        cost = 2 if is_double(char) else 1
        if used + cost > multi:
            parts, used = parts + 1, 0
        used += cost
    return parts


def country_of(number: str) -> str | None:
    """ISO country code of an E.164 number (``+33...`` -> ``FR``), or None when the prefix is unknown."""
    digits = number[1:]
    for size in (1, 2, 3):
        country = COUNTRY_CODES.get(digits[:size])
        if country:
            return country
    return None


# --------------------------------------------------------------------------------------------------------------
# Request validation
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutgoingSms:
    """One validated message of a /send batch."""

    uuid: str
    number: str
    content: str
    sender: str | None
    sms_class: str


def require_params(params) -> dict:
    """Check that JSON-RPC params are an object."""
    if not isinstance(params, dict):
        raise ValidationError("params must be a JSON object")
    return params


def require_token(params: dict) -> str:
    """Return ``params.account_token`` or raise AccessError when it is missing (existence is checked later)."""
    token = params.get("account_token")
    if not isinstance(token, str) or not token:
        raise AccessError("missing account_token")
    return token


def validate_status_params(params: dict) -> list[str]:
    """Validate /status params and return the uuids (lower case); raise ValidationError when malformed."""
    uuids = params.get("uuids")
    if not isinstance(uuids, list):
        raise ValidationError("uuids must be a list")
    if len(uuids) > MAX_STATUS_UUIDS:
        raise ValidationError(f"at most {MAX_STATUS_UUIDS} uuids per call, got {len(uuids)}")
    for index, uuid in enumerate(uuids):
        if not isinstance(uuid, str) or not UUID_RE.fullmatch(uuid):
            raise ValidationError(f"uuids[{index}] must be 32 hex characters")
    return [uuid.lower() for uuid in uuids]


def validate_send_params(params: dict) -> tuple[str | None, list[OutgoingSms]]:
    """Validate /send params and return ``(webhook_url, messages)``; raise ValidationError when malformed."""
    webhook_url = params.get("webhook_url")
    if webhook_url is not None and (
        not isinstance(webhook_url, str) or not webhook_url.startswith(("http://", "https://"))
    ):
        raise ValidationError("webhook_url must be null or an http(s) URL")
    messages = params.get("messages")
    if not isinstance(messages, list):
        raise ValidationError("messages must be a list")
    if len(messages) > MAX_BATCH:
        raise ValidationError(f"a batch holds at most {MAX_BATCH} messages, got {len(messages)}")
    validated = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise ValidationError(f"{where} must be an object")
        uuid = message.get("uuid")
        if not isinstance(uuid, str) or not UUID_RE.fullmatch(uuid):
            raise ValidationError(f"{where}.uuid must be 32 hex characters")
        number, content, sender = message.get("number"), message.get("content"), message.get("sender")
        if not isinstance(number, str):
            raise ValidationError(f"{where}.number must be a string")
        if not isinstance(content, str):
            raise ValidationError(f"{where}.content must be a string")
        if sender is not None and not isinstance(sender, str):
            raise ValidationError(f"{where}.sender must be a string or null")
        sms_class = message.get("sms_class") or "standard"
        if sms_class not in SMS_CLASSES:
            raise ValidationError(f"{where}.sms_class must be one of {sorted(SMS_CLASSES)}")
        validated.append(OutgoingSms(uuid, number, content, sender or None, sms_class))
    return webhook_url, validated
