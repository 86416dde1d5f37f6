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


class ChunkPlan:
    """Sizes of the id-range chunks in which an audience is materialised, each chunk committed
    on its own: the first is small (sending starts once it is committed), the next ones aim at
    ``target_seconds`` of work each, never more than what remains of the time budget, and grow
    at most 4x from one chunk to the next (a range with no records is fast, the next may be dense).

    ``bounds`` keeps the (low, high) source ids still to cover, found once per cron run.

    >>> plan = ChunkPlan(first=5000, maximum=200000, target_seconds=2.0)
    >>> plan.step
    5000
    >>> plan.record(5000, 0.1)  # 50,000 ids/s: 2 s is 100,000 ids, but at most 4x the last chunk
    20000
    >>> plan.record(20000, 0.4)
    80000
    >>> plan.record(80000, 1.6)
    100000
    >>> plan.record(100000, 2.0, remaining_seconds=0.5)  # only 0.5 s of the budget is left
    25000
    >>> plan.record(25000, 1000.0)  # very slow: never below the minimum
    100
    >>> ChunkPlan(first=5000, maximum=300, target_seconds=2.0).step
    300
    """

    def __init__(self, first, maximum, target_seconds, minimum=100):
        self.maximum = max(int(maximum), 1)
        self.minimum = min(minimum, self.maximum)
        self.target_seconds = target_seconds
        self.step = max(min(int(first), self.maximum), self.minimum)
        self.bounds = None

    def record(self, size, seconds, remaining_seconds=None):
        """The next chunk's size after one of ``size`` ids took ``seconds``."""
        target = self.target_seconds if remaining_seconds is None else min(self.target_seconds, remaining_seconds)
        wanted = size * target / max(seconds, 0.001)
        self.step = int(max(self.minimum, min(wanted, size * 4, self.maximum)))
        return self.step
