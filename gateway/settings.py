"""Runtime settings of a running gateway: fault injection and delivery-report behaviour.

Set by ``serve`` options at start and changed at runtime through ``POST /_admin/faults``; the
random draws (faults, report states, duplicate reports) are seeded by ``seed`` for reproducible runs.
"""

from __future__ import annotations

import random
import threading

from .protocol import REPORT_STATES, ValidationError


def _ratio(value) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0 and 1")
    return value


def _non_negative(value) -> float:
    value = float(value)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _optional_non_negative(value) -> float | None:
    return None if value is None else _non_negative(value)


def _optional_int(value) -> int | None:
    return None if value is None else int(value)


SETTING_PARSERS = {
    "fail_ratio": _ratio,
    "accept_then_fail_ratio": _ratio,
    "timeout_ratio": _ratio,
    "timeout_seconds": _non_negative,
    "latency_ms": _non_negative,
    "credit_cap": _optional_non_negative,
    "report_delay": _non_negative,
    "delivered_ratio": _ratio,
    "duplicate_reports": _ratio,
    "seed": _optional_int,
}


class RuntimeSettings:
    """Thread-safe fault-injection and report settings, with seeded random draws."""

    def __init__(self, **values):
        """Create settings from keyword values (names of :data:`SETTING_PARSERS`); unknown names are refused."""
        self._lock = threading.Lock()
        self._values = {
            "fail_ratio": 0.0,
            "accept_then_fail_ratio": 0.0,
            "timeout_ratio": 0.0,
            "timeout_seconds": 30.0,
            "latency_ms": 0.0,
            "credit_cap": None,
            "report_delay": 2.0,
            "delivered_ratio": 0.95,
            "duplicate_reports": 0.0,
            "seed": None,
        }
        self._fault_rng = random.Random()  # noqa: S311 - simulation draws, not cryptography
        self._report_rng = random.Random()  # noqa: S311 - simulation draws, not cryptography
        self.update(values)

    def update(self, changes: dict) -> dict:
        """Validate and apply ``changes`` atomically (a new ``seed`` reseeds the RNGs); return all settings."""
        if not isinstance(changes, dict):
            raise ValidationError("settings must be a JSON object")
        parsed = {}
        for name, value in changes.items():
            if name not in SETTING_PARSERS:
                raise ValidationError(f"unknown setting {name!r}; known: {sorted(SETTING_PARSERS)}")
            try:
                parsed[name] = SETTING_PARSERS[name](value)
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"bad value for {name}: {exc}") from exc
        with self._lock:
            self._values.update(parsed)
            if "seed" in parsed:
                seed = parsed["seed"]
                self._fault_rng.seed(seed)
                self._report_rng.seed(None if seed is None else seed + 1)
            return dict(self._values)

    def snapshot(self) -> dict:
        """Return a copy of every setting."""
        with self._lock:
            return dict(self._values)

    def chance(self, ratio_name: str) -> bool:
        """Draw a fault: True with the probability held by setting ``ratio_name``."""
        with self._lock:
            ratio = self._values[ratio_name]
            return ratio > 0 and (ratio >= 1 or self._fault_rng.random() < ratio)

    def draw_report(self) -> tuple[str, int]:
        """Draw ``(delivery state, number of copies to post)`` for one delivery report."""
        with self._lock:
            delivered = self._values["delivered_ratio"]
            roll = self._report_rng.random()
            if roll < delivered or delivered >= 1:
                state = "delivered"
            else:
                state = REPORT_STATES[1 + min(int((roll - delivered) / (1 - delivered) * 3), 2)]
            copies = 2 if self._report_rng.random() < self._values["duplicate_reports"] else 1
            return state, copies
