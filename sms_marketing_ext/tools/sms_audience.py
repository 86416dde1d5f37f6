"""Pure helpers for SMS audiences (no Odoo import)."""

import functools

import phonenumbers

# Exclusion reasons, in the order they are decided: a recipient gets the first that applies.
# The values are stock failure types of mailing.trace (plus our frequency cap).
REASON_MISSING = "sms_number_missing"
REASON_INVALID = "sms_number_format"
REASON_BLACKLIST = "sms_blacklist"
REASON_OPTOUT = "sms_optout"
REASON_DUPLICATE = "sms_duplicate"
REASON_CAPPED = "sms_capped"

# Keys of the audience summary, per reason.
SUMMARY_KEYS = {
    REASON_MISSING: "missing",
    REASON_INVALID: "invalid",
    REASON_BLACKLIST: "blacklisted",
    REASON_OPTOUT: "opted_out",
    REASON_DUPLICATE: "duplicates",
    REASON_CAPPED: "capped",
}


@functools.cache
def calling_codes():
    """(calling code without '+', ISO region) for every country calling code, main region first.

    E.164 country codes form a prefix code: one of the number's first 1, 2 or 3 digits matches
    exactly one entry. Codes shared by several regions (+1, +7, +44...) give the main region
    (US, RU, GB...), as phonenumbers does for a number it cannot place more precisely.
    """
    return tuple(
        (str(code), regions[0])
        for code, regions in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items())
        if regions and regions[0] != phonenumbers.UNKNOWN_REGION
    )
