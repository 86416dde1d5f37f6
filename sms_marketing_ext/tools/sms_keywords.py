"""Pure helpers for inbound SMS (no Odoo import): opt-out / opt-in keywords and sender numbers.

The first word of the message decides, as operators' STOP handling does, so "stop", " Stop ",
"STOP SMS" and "stop." all opt out, while "please stop" does not. Phones and people add odd
characters around the keyword; the text is normalised before its first word is taken:

* NFKD (full-width ``\uff33\uff34\uff2f\uff30`` is ``STOP``, the no-break and ideographic spaces are spaces), then
  combining marks are dropped (accents, variation selectors: ``stóp`` and ``stop\u0301`` are ``stop``);
* invisible format characters (zero-width space, word joiner, BOM, soft hyphen...) and control
  characters separate words;
* words are split on any Unicode space; punctuation, symbols (emoji) and marks at the edges of a
  word are dropped, and a word that is nothing else ("🙏", "...") is skipped;
* the comparison is case-insensitive (``casefold``).
"""

import hashlib
import json
import unicodedata

from . import sms_phone

STOP = "stop"
START = "start"
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_KEYWORDS = frozenset({"START", "UNSTOP"})

# Unicode categories: Cc control, Cf format (invisible), Z* separators -> word separators;
# P* punctuation, S* symbols (emoji), M* marks (variation selectors, skin tones) -> dropped at a word's edges.
_SEPARATOR_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
_EDGE_CATEGORY_CLASSES = frozenset("PSMCZ")


def _is_edge(char):
    return unicodedata.category(char)[0] in _EDGE_CATEGORY_CLASSES


def first_word(body):
    """The first word of an inbound message, normalised for keyword matching, else ``None``.

    >>> first_word("  \uff33\uff54\uff4f\uff50!\u200bsms")
    'STOP'
    >>> first_word("🙏 «stop» please")
    'STOP'
    >>> first_word("...") is None
    True
    """
    if not isinstance(body, str):
        return None
    text = "".join(
        " " if category in _SEPARATOR_CATEGORIES else char
        for char, category in ((char, unicodedata.category(char)) for char in unicodedata.normalize("NFKD", body))
        if category != "Mn"
    )
    for token in text.split():
        start, end = 0, len(token)
        while start < end and _is_edge(token[start]):
            start += 1
        while end > start and _is_edge(token[end - 1]):
            end -= 1
        if start < end:
            return token[start:end].casefold().upper()
    return None


def classify_inbound(body):
    """Return ``"stop"`` when the message opts out, ``"start"`` when it opts back in, else ``None``.

    >>> classify_inbound("Stop 🙏"), classify_inbound("\u00a0\uff33\uff34\uff21\uff32\uff34")
    ('stop', 'start')
    >>> classify_inbound("non stop") is None
    True
    """
    word = first_word(body)
    if word in STOP_KEYWORDS:
        return STOP
    if word in START_KEYWORDS:
        return START
    return None


def inbound_key(number, to, body, at):
    """Identity of an inbound message, to apply a replayed callback once: the protocol gives no
    message id, so a message is its sender (E.164), recipient, text and date (ISO 8601, UTC).

    >>> len(inbound_key("+33612345678", "36180", "STOP", "2024-05-01T12:00:00"))
    64
    """
    material = json.dumps([number, to or "", body, at], ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def normalize_sender_number(number):
    """E.164 form of an inbound sender number written with its country code (``+33 6 12 34 56 78`` or
    ``0033612345678``), else ``None``. A number of possible length is enough: the operator knows it."""
    return sms_phone.normalize(number, rule=sms_phone.POSSIBLE).number
