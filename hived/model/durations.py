"""Durations as operators write them ("500ms", "2s", "5m", "1h", or plain seconds), and sizes
("512MiB"). Every duration is finite and at most MAX_DURATION: a date computed from one never overflows."""

from __future__ import annotations

import math
import re

MAX_DURATION = 366 * 86400.0  # a year: the longest timeout, backoff or window hived takes

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds as a float; raises ValueError with a message fit for a user."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 2s, 500ms, 5m or a number of seconds")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer past any float (10**400): a 500 before
            raise ValueError("that many seconds is longer than hived takes (366d)") from None
    elif isinstance(value, str) and (match := _PATTERN.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f"{value!r} is not a duration (use 2s, 500ms, 5m, 1h or seconds)")
    if math.isnan(seconds) or seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION:
        raise ValueError(f"{value!r} is longer than hived takes (366d)")
    return seconds


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "kib": 2**10,
    "m": 10**6,
    "mb": 10**6,
    "mib": 2**20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 2**30,
}
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: object) -> int:
    """Bytes from "512MiB", "1G", "300mb" or a plain number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 512MiB or 1G")
    if isinstance(value, int | float):
        size = float(value)
    elif (
        isinstance(value, str)
        and (match := _SIZE_PATTERN.match(value))
        and match.group(2).lower() in _SIZE_UNITS
    ):
        size = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    else:
        raise ValueError(f"{value!r} is not a size (use 512MiB, 1G or bytes)")
    if math.isnan(size) or size < 0:
        raise ValueError("a size cannot be negative")
    if size > 2**62:
        raise ValueError(f"{value!r} is larger than hived takes")
    return int(size)
