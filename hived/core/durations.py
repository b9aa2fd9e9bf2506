"""Durations as operators write them ("500ms", "2s", "5m", "1h", or plain seconds)."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds as a float; raises ValueError with a message fit for a user."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 2s, 500ms, 5m or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _PATTERN.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f"{value!r} is not a duration (use 2s, 500ms, 5m, 1h or seconds)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds
