"""Quiet hours: send only inside a daily window of the recipient's local time (no Odoo import).

The recipient's time zones come from the number (``phonenumbers.timezone``). A mobile number
can map to several zones (Australia, Russia...): a message is sent when the window is open in
all of them, so nobody is woken up; if no such moment exists within two days, the first zone
decides.
"""

import functools
from datetime import timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

_STEP = timedelta(minutes=15)
_HORIZON = timedelta(days=2)

# Error codes of :func:`window_error`.
WINDOW_OUT_OF_RANGE = "out_of_range"
WINDOW_EMPTY = "empty"


def window_error(start, end):
    """None when hours ``start`` to ``end`` (of the local day, 8.5 = 08:30) make a daily send
    window, else an error code: :data:`WINDOW_OUT_OF_RANGE` (start not in [0, 24) or end not in
    (0, 24]) or :data:`WINDOW_EMPTY` (start equals end). A window may run across midnight.

    >>> window_error(8, 21) is None, window_error(22, 6) is None, window_error(0, 24) is None
    (True, True, True)
    >>> window_error(8, 8), window_error(-1, 8), window_error(8, 0), window_error(24, 8)
    ('empty', 'out_of_range', 'out_of_range', 'out_of_range')
    """
    if not (0 <= start < 24 and 0 < end <= 24):
        return WINDOW_OUT_OF_RANGE
    if start == end:
        return WINDOW_EMPTY
    return None


@functools.lru_cache(maxsize=100000)
def timezones_for_number(number):
    """Time zone names of an E.164 ``number``: a tuple, empty when unknown."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    names = phone_timezone.time_zones_for_number(parsed)
    return tuple(name for name in names if name != phone_timezone.UNKNOWN_TIMEZONE)


def _zone(name):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _inside(moment_utc, zone, start, end):
    local = moment_utc.astimezone(zone)
    hour = local.hour + local.minute / 60
    if start <= end:
        return start <= hour < end
    return hour >= start or hour < end  # a window across midnight, such as 22:00-06:00


def next_send_time(now_utc, zone_names, start, end):
    """None when a message may go now, else the UTC moment (naive) it may go.

    :param now_utc: naive UTC datetime (Odoo's convention)
    :param zone_names: the recipient's time zones (see :func:`timezones_for_number`)
    :param start, end: window in hours of the local day (8.0, 21.5...)
    """
    zones = [zone for zone in map(_zone, zone_names) if zone] or [timezone.utc]
    moment = now_utc.replace(tzinfo=timezone.utc)

    def open_at(when, candidate_zones):
        return all(_inside(when, zone, start, end) for zone in candidate_zones)

    if open_at(moment, zones):
        return None
    # The window opens at a quarter of an hour in every real time zone: check each one ahead.
    first = moment.replace(second=0, microsecond=0) + timedelta(minutes=15 - moment.minute % 15)
    for candidate_zones in (zones, zones[:1]):
        when = first
        while when - moment <= _HORIZON:
            if open_at(when, candidate_zones):
                return when.replace(tzinfo=None)
            when += _STEP
    return None  # an empty window: quiet hours cannot apply


