"""Pure helpers for inbound SMS (no Odoo import): opt-out / opt-in keywords and sender numbers.

The first word of the message decides, case- and space-insensitively, so "stop", " Stop ",
"STOP SMS" and "stop." all opt out, while "please stop" does not (as operators' STOP handling).
"""

import re

from . import sms_phone

STOP = "stop"
START = "start"
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_KEYWORDS = frozenset({"START", "UNSTOP"})

_FIRST_WORD_RE = re.compile(r"\S+")
_EDGE_PUNCTUATION = ".,;:!?¡¿'\"()[]{}*-_"


def classify_inbound(body):
    """Return ``"stop"`` when the message opts out, ``"start"`` when it opts back in, else ``None``."""
    match = _FIRST_WORD_RE.search(body or "")
    if not match:
        return None
    word = match.group().strip(_EDGE_PUNCTUATION).upper()
    if word in STOP_KEYWORDS:
        return STOP
    if word in START_KEYWORDS:
        return START
    return None


def normalize_sender_number(number):
    """E.164 form of an inbound sender number written with its country code (``+33 6 12 34 56 78`` or
    ``0033612345678``), else ``None``. A number of possible length is enough: the operator knows it."""
    return sms_phone.normalize(number, rule=sms_phone.POSSIBLE).number
