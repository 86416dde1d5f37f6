"""Pure helpers for SMS sender identities (no Odoo import): validation and suggestion.

The rules are the operators' (as OVHcloud documents them):
- an alphanumeric sender id has 1 to 11 characters among A-Z, a-z, 0-9 and space, and at
  least one letter (an all-digit id would be mistaken for a phone number);
- a short number has 3 to 8 digits;
- a virtual mobile number is a valid mobile number in E.164 form (+ and country code).
"""

import re
import unicodedata

from . import sms_phone

ALPHANUMERIC = "alphanumeric"
SHORT_NUMBER = "short_number"
VIRTUAL_NUMBER = "virtual_number"

ALPHANUMERIC_MAX_LENGTH = 11
_ALPHANUMERIC_RE = re.compile(r"^[A-Za-z0-9 ]{1,11}$")
_SHORT_NUMBER_RE = re.compile(r"^[0-9]{3,8}$")


# Which rule a sender name breaks (models/sms_sender.py words them for people).
ALPHANUMERIC_CHARACTERS = "alphanumeric_characters"  # not 1 to 11 of A-Z, a-z, 0-9 and space
ALPHANUMERIC_NO_LETTER = "alphanumeric_no_letter"  # digits and spaces only: reads as a phone number
ALPHANUMERIC_EDGE_SPACE = "alphanumeric_edge_space"  # starts or ends with a space
SHORT_NUMBER_DIGITS = "short_number_digits"  # not 3 to 8 digits
VIRTUAL_NUMBER_NOT_MOBILE = "virtual_number_not_mobile"  # not a valid mobile number in international format
UNKNOWN_TYPE = "unknown_type"  # not one of the three sender types


def sender_name_error(sender_type, name):
    """Return the code of the rule ``name`` breaks as a sender of ``sender_type``, or ``None`` when it is valid.

    The codes are the constants above; the caller words them for the user who typed the name.

    >>> sender_name_error(ALPHANUMERIC, "MyShop") is None
    True
    >>> sender_name_error(ALPHANUMERIC, "My-Shop")
    'alphanumeric_characters'
    >>> sender_name_error(ALPHANUMERIC, "2024")
    'alphanumeric_no_letter'
    >>> sender_name_error(ALPHANUMERIC, " Shop")
    'alphanumeric_edge_space'
    >>> sender_name_error(SHORT_NUMBER, "12")
    'short_number_digits'
    >>> sender_name_error(VIRTUAL_NUMBER, "+33142685300")  # a Paris landline
    'virtual_number_not_mobile'
    >>> sender_name_error("fax", "MyShop")
    'unknown_type'
    """
    name = name or ""
    if sender_type == ALPHANUMERIC:
        if not _ALPHANUMERIC_RE.match(name):
            return ALPHANUMERIC_CHARACTERS
        if not any(char.isalpha() for char in name):
            return ALPHANUMERIC_NO_LETTER
        if name != name.strip():
            return ALPHANUMERIC_EDGE_SPACE
        return None
    if sender_type == SHORT_NUMBER:
        if not _SHORT_NUMBER_RE.match(name):
            return SHORT_NUMBER_DIGITS
        return None
    if sender_type == VIRTUAL_NUMBER:
        if normalize_virtual_number(name) is None:
            return VIRTUAL_NUMBER_NOT_MOBILE
        return None
    return UNKNOWN_TYPE


def normalize_virtual_number(number):
    """E.164 form of a mobile ``number`` written with its country code (+...), else ``None``."""
    if not number or not number.strip().startswith("+"):
        return None
    return sms_phone.normalize(number, rule=sms_phone.MOBILE).number


def suggest_alphanumeric_sender(company_name):
    """A valid alphanumeric sender id derived from ``company_name``, or ``None``.

    Accents are dropped, other characters become spaces, and words are kept whole while they
    fit in 11 characters (the first word is cut when it alone is longer).
    """
    ascii_name = unicodedata.normalize("NFKD", company_name or "").encode("ascii", "ignore").decode()
    words = re.sub(r"[^A-Za-z0-9]+", " ", ascii_name).split()
    suggestion = ""
    for word in words:
        candidate = f"{suggestion} {word}" if suggestion else word
        if len(candidate) > ALPHANUMERIC_MAX_LENGTH:
            if not suggestion:
                suggestion = word[:ALPHANUMERIC_MAX_LENGTH]
            break
        suggestion = candidate
    if not suggestion or sender_name_error(ALPHANUMERIC, suggestion):
        return None
    return suggestion
