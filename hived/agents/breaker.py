"""A circuit breaker per agent: after `threshold` failed tasks in a row the agent is taken out of
routing for `cooldown` seconds (open), then gets one probe task (half-open): success closes the
circuit, failure opens it again."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass
class Breaker:
    threshold: int = 5
    cooldown: float = 30.0
    consecutive_failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    def state(self, now: float) -> Circuit:
        if self.opened_at is None:
            return Circuit.CLOSED
        return Circuit.OPEN if now - self.opened_at < self.cooldown else Circuit.HALF_OPEN

    def capacity(self, now: float, max_concurrency: int) -> int:
        """How many tasks routing may give the agent at most right now."""
        state = self.state(now)
        if state is Circuit.CLOSED:
            return max_concurrency
        if state is Circuit.HALF_OPEN and not self.probing:
            return 1
        return 0

    def on_assigned(self, now: float) -> None:
        if self.state(now) is Circuit.HALF_OPEN:
            self.probing = True

    def record(self, ok: bool, now: float) -> None:
        if ok:
            self.consecutive_failures, self.opened_at, self.probing = 0, None, False
            return
        self.consecutive_failures += 1
        if self.probing or (self.threshold > 0 and self.consecutive_failures >= self.threshold):
            self.opened_at, self.probing = now, False
