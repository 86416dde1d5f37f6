"""Pure helpers for SMS sender identities (no Odoo import): validation and suggestion.

The rules are the operators' (as OVHcloud documents them):
- an alphanumeric sender id has 1 to 11 characters among A-Z, a-z, 0-9 and space, and at
  least one letter (an all-digit id would be mistaken for a phone number);
- a short number has 3 to 8 digits;
- a virtual mobile number is a valid mobile number in E.164 form (+ and country code).
"""

import re
import unicodedata

import phonenumbers

ALPHANUMERIC = "alphanumeric"
SHORT_NUMBER = "short_number"
VIRTUAL_NUMBER = "virtual_number"

ALPHANUMERIC_MAX_LENGTH = 11
_ALPHANUMERIC_RE = re.compile(r"^[A-Za-z0-9 ]{1,11}$")
_SHORT_NUMBER_RE = re.compile(r"^[0-9]{3,8}$")
_MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def sender_name_error(sender_type, name):
    """Return why ``name`` is not a valid sender of ``sender_type``, or ``None`` when it is.

    The message is meant for the user who typed the name.
    """
    name = name or ""
    if sender_type == ALPHANUMERIC:
        if not _ALPHANUMERIC_RE.match(name):
            return (
                f"An alphanumeric sender has 1 to {ALPHANUMERIC_MAX_LENGTH} characters, only letters A-Z "
                f"without accents, digits and spaces: '{name}' does not qualify."
            )
        if not any(char.isalpha() for char in name):
            return f"An alphanumeric sender needs at least one letter: '{name}' would read as a phone number."
        if name != name.strip():
            return f"An alphanumeric sender cannot start or end with a space: '{name}'."
        return None
    if sender_type == SHORT_NUMBER:
        if not _SHORT_NUMBER_RE.match(name):
            return f"A short number has 3 to 8 digits and nothing else: '{name}' does not qualify."
        return None
    if sender_type == VIRTUAL_NUMBER:
        if normalize_virtual_number(name) is None:
            return (
                f"A virtual number must be a valid mobile number in international format, "
                f"such as +33612345678: '{name}' is not."
            )
        return None
    return f"Unknown sender type '{sender_type}'."


def normalize_virtual_number(number):
    """E.164 form of a mobile ``number`` written with its country code, else ``None``."""
    if not number or not number.strip().startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed) or phonenumbers.number_type(parsed) not in _MOBILE_TYPES:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


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
