"""Exponential backoff with jitter, for task retries and agent restarts."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    attempt: int,
    initial: float,
    multiplier: float,
    maximum: float,
    jitter: float = 0.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number `attempt` (1 = first retry): initial * multiplier^(attempt-1),
    capped at `maximum`, then spread by +/- `jitter` (a fraction) so that herds disperse."""
    base = min(maximum, initial * multiplier ** max(0, attempt - 1))
    if jitter:
        base *= 1.0 + jitter * (2.0 * rand() - 1.0)
    return max(0.0, min(base, maximum * (1.0 + jitter)))
