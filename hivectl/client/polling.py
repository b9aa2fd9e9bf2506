"""How the clients wait: the one place that decides when to ask hived again (pure: time is passed in).

A wait for a task or a run is a long-poll that hived answers the moment it ends (`Poll.long_wait`).
A watch of a run is a long-poll that hived answers the moment the run or one of its steps changes
(`?since=REVISION`, `Watch`); a watch of a task polls with a growing interval, reset whenever the task
changed (`Poll.next_delay`). A hived that is restarting (unreachable) or whose database is (503) is
waited for, up to `patience` seconds, said once through `notice`: tasks and runs are durable, so the
wait goes on where it was.
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


@dataclass
class Watch:
    """The reads of a watch of a run: each asks hived to answer when the run's revision is no longer
    the one last seen (`?wait=S&since=REVISION`), so every change comes at once, without polling.
    `refresh` caps each wait (a live table redraws its clocks that often, changed or not). An answer
    that is the same as the last and came early (hived does not drive the run at that moment, or
    does not know `since`) is followed by a growing pause, as a poll would be."""

    poll: Poll
    refresh: float | None = None

    def wait(self, now: float) -> float:
        """How long hived may hold the next read; `WaitTimeout` past the deadline."""
        wait = self.poll.long_wait(now)
        return min(wait, self.refresh) if self.refresh is not None else wait

    def pause(self, same: bool, asked: float, wait: float, now: float) -> float:
        """Seconds to sleep before the next read, after an answer to a read sent at `asked`."""
        if same and now - asked < wait / 2:
            return self.poll.next_delay(False, now)
        self.poll._interval = 0.0  # the next early answer pauses the shortest time again
        return 0.0


LONG_POLL = 20.0  # s hived holds a read of a task or run that has not ended (under the client's timeout)
TASK_FINAL = frozenset({"completed", "failed", "cancelled"})
RUN_FINAL = frozenset({"succeeded", "failed", "cancelled"})


def resume_after(last_seen: int | None, daemon_last_id: int) -> int | None:
    """Where a dropped event stream picks up: after the last event seen, or, when hived's newest id
    is below it (a restarted hived counts anew), from the start of the new daemon's log."""
    if last_seen is None:
        return None
    return last_seen if daemon_last_id >= last_seen else 0
