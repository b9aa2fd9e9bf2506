"""How the clients wait: the one place that decides when to ask hived again (pure: time is passed in).

A wait for a task or a run polls with a growing interval, reset whenever the object changed. A hived
that is restarting (unreachable) or whose database is (503) is waited for, up to `patience` seconds,
said once through `notice`: tasks and runs are durable, so the wait goes on where it was. When hived
gains a long-poll for these waits, `Poll.next_delay` is the only thing that changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hivectl.client.errors import ApiError, ClientError, DaemonUnreachable, WaitTimeout

PATIENCE = 120.0  # seconds a wait or watch rides out an unreachable hived or database
OUTAGE_RETRY = 1.0  # seconds between attempts while hived is unreachable

Notice = Callable[[str], None]


def transient(exc: ClientError) -> bool:
    """A failure that goes away by itself when hived or its database is back."""
    return isinstance(exc, DaemonUnreachable) or (isinstance(exc, ApiError) and exc.status == 503)


@dataclass
class Patience:
    """Rides out one outage at a time: `retry_in` says how long to sleep before trying again, or
    raises the failure when it is not transient or the outage has lasted longer than `patience`."""

    patience: float = PATIENCE
    notice: Notice | None = None
    _outage_ends: float | None = None

    def retry_in(self, exc: ClientError, now: float) -> float:
        if not transient(exc):
            raise exc
        if self._outage_ends is None:
            self._outage_ends = now + self.patience
            if self.notice is not None:
                self.notice(f"{exc}; still waiting (up to {self.patience:.0f}s)")
        elif now > self._outage_ends:
            raise exc
        return OUTAGE_RETRY

    def recovered(self) -> None:
        self._outage_ends = None


@dataclass
class Poll:
    """The schedule of one wait: `next_delay` after each answer, `WaitTimeout` past the deadline."""

    what: str
    started: float
    timeout: float | None = None
    initial: float = 0.1
    factor: float = 1.5
    maximum: float = 1.0
    _interval: float = 0.0

    def next_delay(self, changed: bool, now: float) -> float:
        self._interval = self.initial if changed or not self._interval else self._interval * self.factor
        self._interval = min(self._interval, self.maximum)
        if self.timeout is None:
            return self._interval
        left = self.started + self.timeout - now
        if left <= 0:
            raise WaitTimeout(f"{self.what} did not end within {self.timeout:g}s")
        return min(self._interval, left)


    def long_wait(self, now: float) -> float:
        """How long to ask hived to hold the next read (`?wait=`): LONG_POLL, or what is left of
        the timeout; `WaitTimeout` when nothing is."""
        if self.timeout is None:
            return LONG_POLL
        left = self.started + self.timeout - now
        if left <= 0:
            raise WaitTimeout(f"{self.what} did not end within {self.timeout:g}s")
        return min(LONG_POLL, left)


LONG_POLL = 20.0  # s hived holds a read of a task or run that has not ended (under the client's timeout)
TASK_FINAL = frozenset({"completed", "failed", "cancelled"})
RUN_FINAL = frozenset({"succeeded", "failed", "cancelled"})


def resume_after(last_seen: int | None, daemon_last_id: int) -> int | None:
    """Where a dropped event stream picks up: after the last event seen, or, when hived's newest id
    is below it (a restarted hived counts anew), from the start of the new daemon's log."""
    if last_seen is None:
        return None
    return last_seen if daemon_last_id >= last_seen else 0
