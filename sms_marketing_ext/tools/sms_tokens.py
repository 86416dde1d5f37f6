"""Fixed-length, unguessable per-recipient tokens for SMS links (no Odoo import).

A token carries the recipient's trace id and an HMAC-SHA256 tag of it, keyed with the
database secret and a purpose, in URL-safe base64 without padding. Its length is fixed, so
the SMS counter knows the exact length of every recipient's message. A token cannot be
guessed from a neighbour's (unlike stock's sequential SMS id), and a tampered one is refused.

- link tokens (click attribution): 5-byte id + 4-byte tag = 12 characters;
- opt-out tokens (one-click unsubscribe): 5-byte id + 7-byte tag = 16 characters.
"""

import base64
import binascii
import hashlib
import hmac

_ID_BYTES = 5  # ids up to 2**40: a trillion traces
_TAG_BYTES = {"link": 4, "optout": 7}
MAX_ID = 2 ** (8 * _ID_BYTES) - 1
# The trace id the links of a test SMS are signed for: no trace ever gets it, the opt-out page shows a
# harmless demonstration for it.
TEST_TRACE_ID = MAX_ID


def token_length(purpose):
    return (_ID_BYTES + _TAG_BYTES[purpose]) * 4 // 3


def _tag(secret, purpose, trace_id):
    # hmac.digest: the same HMAC as hmac.new(...).digest(), in one call (OpenSSL's one-shot HMAC;
    # the send loop computes two per SMS).
    return hmac.digest(secret.encode(), f"{purpose}:{trace_id}".encode(), hashlib.sha256)[: _TAG_BYTES[purpose]]


def make_token(secret, purpose, trace_id):
    """The token of ``trace_id`` for ``purpose`` ("link" or "optout")."""
    if not 0 < trace_id <= MAX_ID:
        raise ValueError(f"trace id out of range: {trace_id}")
    raw = trace_id.to_bytes(_ID_BYTES, "big") + _tag(secret, purpose, trace_id)
    return base64.urlsafe_b64encode(raw).decode()


def read_token(secret, purpose, token):
    """The trace id a valid ``token`` carries, or None for a malformed or tampered one."""
    if not token or len(token) != token_length(purpose):
        return None
    try:
        raw = base64.urlsafe_b64decode(token.encode())
    except (binascii.Error, ValueError):
        return None
    trace_id = int.from_bytes(raw[:_ID_BYTES], "big")
    if not trace_id or not hmac.compare_digest(raw[_ID_BYTES:], _tag(secret, purpose, trace_id)):
        return None
    return trace_id
