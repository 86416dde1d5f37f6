# Part of sms_marketing_ext. License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Exact SMS length / part counting (3GPP TS 23.038, a.k.a. GSM 03.38).

Pure Python, no Odoo import. The JavaScript twin lives in ``static/src/js/sms_segments.js``; both are
checked against the same vectors in ``static/tests/sms_segments_vectors.json``, keep them in sync.

Counting rules:

* A text is sent in the GSM 7-bit default alphabet when every character is in the basic table or in the
  extension table; otherwise the whole text is sent in UCS-2.
* GSM-7 length is in septets: a basic character costs 1, an extension character costs 2 (ESC + char).
* UCS-2 length is in UTF-16 code units: a character outside the BMP (e.g. most emoji) is a surrogate
  pair and costs 2.
* One part holds 160 septets / 70 units. A longer text is split into concatenated parts whose user data
  header leaves 153 septets / 67 units each.
* A segmenter never splits an escape pair or a surrogate pair across two parts: when such a 2-unit item
  does not fit in the last free unit of a part, it starts the next part and that unit is wasted. The
  number of parts is therefore computed by packing, not by dividing the length.
"""

import unicodedata
from itertools import pairwise

# fmt: off
# GSM 03.38 default alphabet, basic table, in code order 0x00..0x7F (one row of 16 per line).
# 0x1B is the escape to the extension table, not a character. 0x09 is the capital "Ç" (the standard's
# glyph; lowercase "ç" is NOT in the alphabet). 0x24 is the currency sign "¤", 0x02 is "$".
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ" "ÆæßÉ"  # ESC (0x1B) sits between "Ξ" and "Æ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# Extension table characters, each sent as ESC + code, so they cost 2 septets: form feed, ^ { } \ [ ~ ] | €.
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")

# Code points above this one are encoded in UTF-16 as a surrogate pair (2 units).
_MAX_BMP_CODE_POINT = 0xFFFF
_MAX_BMP_CHAR = chr(_MAX_BMP_CODE_POINT)
_GSM7_ALL = GSM7_BASIC | GSM7_EXTENDED

# (units in a single-part message, units per part of a multipart message)
_PART_SIZES = {"gsm7": (160, 153), "ucs2": (70, 67)}

# "Make GSM-compatible" replacements: look-alikes that have a GSM-7 equivalent. Anything not listed here
# (emoji, non-Latin scripts, ...) is left untouched. An empty replacement removes the character.
_GSM_REPLACEMENTS = {
    # Typographic single quotes, primes and accents used as apostrophes.
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    # Typographic double quotes, guillemets and double prime.
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"', "\u2033": '"',
    # Hyphens, dashes, minus sign and bullet.
    "\u2010": "-", "\u2011": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-", "\u2022": "-",
    "\u2026": "...",
    # Tab, no-break space and the other Unicode spaces.
    "\t": " ", "\u00a0": " ", **{chr(code): " " for code in range(0x2000, 0x200B)}, "\u202f": " ", "\u205f": " ",
    "\u3000": " ",
    # Zero-width characters (including the BOM / zero-width no-break space) are dropped, except the joiners
    # inside emoji sequences and non-Latin scripts, see _JOINERS.
    "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": "",
    # Accented Latin letters missing from GSM-7. "ç" maps to "Ç", the only c-cedilla GSM-7 has (the usual
    # gateway convention); the accented letters that GSM-7 does have (é è ù ì ò à Ä Ö Ñ Ü Å É ...) stay.
    "á": "a", "â": "a", "ã": "a", "ê": "e", "ë": "e", "í": "i", "î": "i", "ï": "i",
    "ó": "o", "ô": "o", "õ": "o", "ú": "u", "û": "u", "ç": "Ç",
    "Á": "A", "À": "A", "Â": "A", "Ã": "A", "È": "E", "Ê": "E", "Ë": "E", "Í": "I", "Ì": "I", "Î": "I", "Ï": "I",
    "Ó": "O", "Ò": "O", "Ô": "O", "Õ": "O", "Ú": "U", "Ù": "U", "Û": "U",
    "œ": "oe", "Œ": "OE",
}
# fmt: on

# Zero-width non-joiner / joiner are part of emoji ZWJ sequences (👨‍👩‍👧) and of Arabic or Indic spelling:
# to_gsm() keeps them when both neighbours are characters it keeps as non-GSM, so it never breaks what it
# deliberately leaves alone, and removes them everywhere else.
_JOINERS = frozenset("\u200c\u200d")


def _layout(text):
    """Return ``(encoding, non_gsm_chars, length, per_part, parts)`` for ``text``.

    ``parts`` lists ``[start_index, used_units]`` for each part, filled greedily without ever splitting
    a 2-unit item (escape pair or surrogate pair) across two parts.
    """
    non_gsm_chars = list(dict.fromkeys(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENDED))
    if non_gsm_chars:
        encoding = "ucs2"
        costs = [2 if ord(c) > _MAX_BMP_CODE_POINT else 1 for c in text]
    else:
        encoding = "gsm7"
        costs = [2 if c in GSM7_EXTENDED else 1 for c in text]
    length = sum(costs)
    single, multi = _PART_SIZES[encoding]
    per_part = single if length <= single else multi
    parts = []
    for index, cost in enumerate(costs):
        if not parts or parts[-1][1] + cost > per_part:
            parts.append([index, 0])
        parts[-1][1] += cost
    return encoding, non_gsm_chars, length, per_part, parts


def analyze(text):
    """Describe how ``text`` is sent as SMS.

    :return: dict with ``encoding`` ("gsm7" or "ucs2"), ``length`` (septets or UTF-16 units),
        ``segments`` (number of parts, 0 for an empty text), ``non_gsm_chars`` (distinct characters that
        forced UCS-2, in order of first appearance), ``chars`` (number of code points), ``per_part``
        (capacity of each part) and ``remaining`` (free units left in the last part).
    """
    encoding, non_gsm_chars, length, per_part, parts = _layout(text)
    return {
        "encoding": encoding,
        "length": length,
        "segments": len(parts),
        "non_gsm_chars": non_gsm_chars,
        "chars": len(text),
        "per_part": per_part,
        "remaining": per_part - (parts[-1][1] if parts else 0),
    }


def billed_parts(text):
    """Parts a gateway sends and bills for ``text``: its parts, and 1 for an empty text. Same
    result as ``analyze``, faster for the usual texts (no 2-unit item: counted by dividing).

    >>> billed_parts(""), billed_parts("a" * 160), billed_parts("a" * 161), billed_parts("Ł" * 71)
    (1, 1, 2, 2)
    >>> billed_parts("€" * 80), billed_parts("€" * 81), billed_parts("😀" * 35), billed_parts("😀" * 36)
    (1, 2, 1, 2)
    """
    chars = set(text)
    if chars <= GSM7_BASIC:
        single, multi = _PART_SIZES["gsm7"]
    elif not chars <= _GSM7_ALL and max(chars) <= _MAX_BMP_CHAR:
        single, multi = _PART_SIZES["ucs2"]
    else:  # escape or surrogate pairs: packing decides
        return max(len(_layout(text)[4]), 1)
    return 1 if len(text) <= single else -(-len(text) // multi)


def split_parts(text):
    """Return the parts of ``text`` as a segmenter cuts them; ``"".join(split_parts(text)) == text``."""
    bounds = [start for start, _used in _layout(text)[4]] + [len(text)]
    return [text[start:end] for start, end in pairwise(bounds)]


def invisible_code(char):
    """The code point (``"U+00A0"``) of a character that shows nothing by itself: a space other than
    the plain one, a tab, a zero-width or other format / control character. ``""`` for any other one,
    which can simply be shown as is.

    >>> invisible_code("\\u00a0"), invisible_code("\\t"), invisible_code("\\u200b"), invisible_code("é")
    ('U+00A0', 'U+0009', 'U+200B', '')
    """
    if char in GSM7_BASIC or unicodedata.category(char)[0] not in "ZC":
        return ""
    return f"U+{ord(char):04X}"


def _is_kept_non_gsm(char):
    """Whether to_gsm() leaves ``char`` as is although it is not GSM-7 (emoji, non-Latin letter, ...)."""
    return char not in GSM7_BASIC and char not in GSM7_EXTENDED and char not in _GSM_REPLACEMENTS


def _joins_kept_chars(text, index):
    """Whether the joiner at ``index`` sits between two characters that to_gsm() keeps as non-GSM."""
    return 0 < index < len(text) - 1 and _is_kept_non_gsm(text[index - 1]) and _is_kept_non_gsm(text[index + 1])


def to_gsm(text):
    """Replace look-alike characters by their GSM-7 equivalent ("Make GSM-compatible").

    :return: ``(new_text, changes)`` where ``changes`` lists ``{"char", "replacement", "count"}`` dicts,
        one per replaced character, in order of first appearance.
    """
    changes = {}
    out = []
    for index, char in enumerate(text):
        replacement = _GSM_REPLACEMENTS.get(char)
        if replacement is None or (char in _JOINERS and _joins_kept_chars(text, index)):
            out.append(char)
            continue
        out.append(replacement)
        change = changes.setdefault(char, {"char": char, "replacement": replacement, "count": 0})
        change["count"] += 1
    return "".join(out), list(changes.values())
