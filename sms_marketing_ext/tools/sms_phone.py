"""Phone numbers as people write them, to E.164 (no Odoo import): the one normaliser of the addon.

:func:`normalize` returns a :class:`Phone`: the E.164 ``number`` when it is accepted, else ``None``
and a ``reason`` code that says why, for the caller to word for people:

- ``missing``: nothing written;
- ``not_a_number``: text that is no phone number ("hello", "12");
- ``no_country``: no international prefix (+...) and no country to read the number in;
- ``unknown_prefix``: an international prefix that is no country's;
- ``not_possible``: a length no number of that country has;
- ``invalid``: not a number of that country;
- ``not_mobile``: a valid number, but not a mobile one (rule ``mobile``).

What is accepted depends on the ``rule``:

- ``stock`` (the default): the rule of Odoo's ``phone_validation``, which fills the
  ``phone_sanitized`` of contacts, leads and partners. Numbers compared with those (the audience,
  the imports into mailing lists, the blacklist, test numbers) must use it: a valid number, or a
  number of possible length that becomes valid once written in international form; a number with
  too many digits is read again as if it began with "+" ("0033...", "33...").
- ``valid``: a valid number ("00" read as "+").
- ``possible``: a number of possible length ("00" read as "+"): what operators report as the
  sender of an inbound SMS, even from a range too new for the metadata.
- ``mobile``: a valid mobile number ("00" read as "+").
"""

import re
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult

# Reasons a value is not accepted.
MISSING = "missing"
NOT_A_NUMBER = "not_a_number"
NO_COUNTRY = "no_country"
UNKNOWN_PREFIX = "unknown_prefix"
NOT_POSSIBLE = "not_possible"
INVALID = "invalid"
NOT_MOBILE = "not_mobile"

# Rules of acceptance.
STOCK = "stock"
VALID = "valid"
POSSIBLE = "possible"
MOBILE = "mobile"

_NUMBER_LIKE = re.compile(r"\+?[\d\s().\-/]+")
_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


class Phone(NamedTuple):
    """What :func:`normalize` found.

    ``number``: E.164 form, ``None`` when not accepted; ``reason``: why not (a code above), ``None``
    when accepted; ``country_code``: the calling code of the number (33), ``None`` when the value
    could not be read at all; ``region``: ISO code of the main country of that calling code, else
    the region the number was read in.
    """

    number: str | None
    reason: str | None
    country_code: int | None
    region: str | None


def normalize(value, region=None, rule=STOCK):
    """Read ``value`` as a phone number, in ``region`` (ISO code) when it has no international prefix.

    >>> normalize("06 12 34 56 78", "FR")
    Phone(number='+33612345678', reason=None, country_code=33, region='FR')
    >>> normalize("0033 6 12 34 56 78").number  # stock reads "00" in the region only
    >>> normalize("0033 6 12 34 56 78", rule=VALID).number
    '+33612345678'
    >>> normalize("33612345678", "FR").number  # too long: read again with "+"
    '+33612345678'
    >>> normalize("06 12", "FR")
    Phone(number=None, reason='not_possible', country_code=33, region='FR')
    >>> [normalize(value, "FR").reason for value in ("", "hello", "+999 123 456", "01 02 03 04 05")]
    ['missing', 'not_a_number', 'unknown_prefix', None]
    >>> normalize("0612345678").reason
    'no_country'
    >>> normalize("+1 555 0100", rule=POSSIBLE).number, normalize("+1 555", rule=POSSIBLE).reason
    ('+15550100', 'not_possible')
    >>> normalize("+33 1 23 45 67 89", rule=MOBILE).reason
    'not_mobile'
    """
    if not isinstance(value, str) or not value.strip():
        return Phone(None, MISSING, None, region)
    region = region.upper() if region else None
    if rule == STOCK:
        # As given: stock reads the stored field as it is, and so must we to find the same number.
        text = value
        parsed = _parse_stock(value, region)
    else:
        text = value.strip()
        if text.startswith("00"):
            text = "+" + text[2:]
        if text.startswith("+"):
            region = None  # the number says its country
        parsed = _parse_checked(text, region, rule)
    if parsed is not None:
        return Phone(
            phonenumbers.format_number(parsed, PhoneNumberFormat.E164),
            None,
            parsed.country_code,
            phonenumbers.region_code_for_country_code(parsed.country_code),
        )
    return _rejected(text.strip(), region, rule)


def normalize_sms(value, region=None):
    """``normalize(value, region)`` (the stock rule) and whether the ``mobile`` rule rejects the
    value as ``not_mobile``, in one parse where that is provably the same as calling both.

    The imports into mailing lists need both for every line (a landline is refused). When the value
    does not start with "00" and its first stock parse is valid, both rules read the very same text
    in the same region (a "+" number ignores the region), so the mobile rule's answer is the type of
    that parsed number; otherwise both functions are called.

    >>> normalize_sms("06 12 34 56 78", "FR")
    (Phone(number='+33612345678', reason=None, country_code=33, region='FR'), False)
    >>> normalize_sms("+33 1 23 45 67 89")[1], normalize_sms("0033 1 23 45 67 89", "FR")[1]
    (True, True)
    """
    if isinstance(value, str) and value.strip() and not value.lstrip().startswith("00"):
        upper = region.upper() if region else None
        parsed = _parse(value, upper)
        if parsed is not None and phonenumbers.is_possible_number(parsed):
            # number_type() is UNKNOWN exactly when is_valid_number() is False: both look the
            # number's region up the same way and match the same patterns (phonenumbers'
            # _number_type_helper); one call instead of two per line of an import.
            kind = phonenumbers.number_type(parsed)
            if kind != PhoneNumberType.UNKNOWN:
                phone = Phone(
                    phonenumbers.format_number(parsed, PhoneNumberFormat.E164),
                    None,
                    parsed.country_code,
                    phonenumbers.region_code_for_country_code(parsed.country_code),
                )
                return phone, kind not in _MOBILE_TYPES
    phone = normalize(value, region)
    return phone, bool(phone.number) and normalize(value, region, rule=MOBILE).reason == NOT_MOBILE


def _parse(text, region):
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def _parse_checked(text, region, rule):
    parsed = _parse(text, region)
    if parsed is None:
        return None
    if rule == POSSIBLE:
        return parsed if phonenumbers.is_possible_number(parsed) else None
    if not phonenumbers.is_valid_number(parsed):
        return None
    if rule == MOBILE and phonenumbers.number_type(parsed) not in _MOBILE_TYPES:
        return None
    return parsed


def _parse_stock(text, region):
    """The number as Odoo's ``phone_validation.phone_parse`` reads it (the same rule, our code), else None."""
    parsed = _parse(text, region)
    if parsed is None:
        return None
    if not phonenumbers.is_possible_number(parsed):
        if phonenumbers.is_possible_number_with_reason(parsed) != ValidationResult.TOO_LONG:
            return None
        # Too many digits: people write "0033..." or "33..." for "+33...".
        if text.startswith("00"):
            return _parse_stock(f"+{text.lstrip('0')}", region)
        if not text.startswith("+"):
            return _parse_stock(f"+{text}", region)
        return None
    if phonenumbers.is_valid_number(parsed):
        return parsed
    # Written in international form, the country's metadata applies to it.
    again = _parse(phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL), region)
    return again if again is not None and phonenumbers.is_valid_number(again) else None


def _rejected(text, region, rule):
    """Why ``text`` (not accepted under ``rule``) is not a number."""
    if sum(1 for char in text if char.isdigit()) < 3 or not _NUMBER_LIKE.fullmatch(text):
        return Phone(None, NOT_A_NUMBER, None, region)
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            reason = UNKNOWN_PREFIX if text.startswith(("+", "00")) else NO_COUNTRY
            return Phone(None, reason, None, region)
        return Phone(None, INVALID, None, region)
    if parsed.country_code:
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
    if not phonenumbers.is_possible_number(parsed):
        reason = NOT_POSSIBLE
    elif rule == MOBILE and phonenumbers.is_valid_number(parsed):
        reason = NOT_MOBILE
    else:
        reason = INVALID
    return Phone(None, reason, parsed.country_code or None, region)
