"""Durations as people write them in flows: `500ms`, `30s`, `5m`, `1h30m`, `2d`."""

from __future__ import annotations

import math
import re

MAX_SECONDS = 366 * 86400.0  # a year: longer is a typo, and overflows timedelta arithmetic

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")


def parse_duration(value: object) -> float:
    """Seconds in ``value``; a bare number is seconds. Raises ValueError with a hint."""
    if isinstance(value, bool):
        raise ValueError(_hint(value))
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(_hint(value)) from None
        if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_SECONDS:
            raise ValueError(_hint(value))
        return seconds
    if not isinstance(value, str) or not _WHOLE.fullmatch(value.strip()):
        raise ValueError(_hint(value))
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(value.strip()))
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise ValueError(_hint(value))
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs}s" if secs else f"{minutes}m"


def _hint(value: object) -> str:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return (f"bad duration {shown}: write a number with a unit, e.g. 500ms, 30s, 5m, 1h30m, 2d "
            "(at most 366d)")
