"""The audit line of a change made through the Unix socket (`POST /tasks by uid 1000 (pid 4242)`),
written once per window for the same caller and request, not once per request.

A client that submits hundreds of tasks a second, and every agent's work request, would otherwise
write a line each: thousands a second at INFO, about a tenth of hived's time per task, and past
journald's default rate limit (10,000 messages in 30 s), after which journald drops hived's other
lines too, warnings and errors included. So the first request of a series is logged at once, as
before; the same request again from the same process (same method, path, uid and pid) within
`WINDOW` seconds is counted, and the count is written in one line when the window ends:
`POST /tasks by uid 1000 (pid 4242): 7011 more in 10s`. Another path, another process or another
user is a line of its own at once, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

log = logging.getLogger("hived.api")

WINDOW = 10.0  # seconds during which the same request of the same caller is counted, not logged
SLACK = 0.05  # the least wait of the timer (a loop's clock may fire a hair early)


class Call(NamedTuple):
    method: str
    path: str
    uid: int
    pid: int

    def line(self) -> str:
        return f"{self.method} {self.path} by uid {self.uid} (pid {self.pid})"


class Repeats:
    """Pure: which calls to log now, and the counts of windows that ended."""

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        # call -> [window start, repeats counted], in the order of the windows' starts (the clock
        # only moves on): the ended ones are found from the front, however many are open
        self.open: dict[Call, list[float]] = {}

    def seen(self, call: Call, now: float) -> tuple[bool, int]:
        """(log this call now, repeats of its previous window, to sum up now)."""
        entry = self.open.get(call)
        if entry is not None and now - entry[0] < self.window:
            entry[1] += 1
            return False, 0
        if entry is not None:
            del self.open[call]  # its new window goes to the back
        self.open[call] = [now, 0]
        return True, int(entry[1]) if entry is not None else 0

    def due(self, now: float, everything: bool = False) -> list[tuple[Call, int]]:
        """The windows that ended by `now` (all of them with `everything`), forgotten; each call with
        its repeats, the calls without any left out."""
        ended = []
        for call, entry in self.open.items():
            if not everything and now - entry[0] < self.window:
                break
            ended.append(call)
        counts = [(c, int(self.open.pop(c)[1])) for c in ended]
        return [(c, n) for c, n in counts if n]

    def next_end(self) -> float | None:
        """When the first open window started (None: none open); it ends `window` later."""
        first = next(iter(self.open.values()), None)
        return None if first is None else first[0]


class AuditLog:
    """`Repeats` on hived's log: one instance per listener, shared by its middleware chains."""

    def __init__(
        self,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
        call_later: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        self.repeats = Repeats(window)
        self.clock = clock
        self._call_later = call_later
        self._timer: Any = None

    def changed(self, method: str, path: str, uid: int, pid: int) -> None:
        call = Call(method, path, uid, pid)
        now = self.clock()
        first, before = self.repeats.seen(call, now)
        if before:
            self._summary(call, before)
        if first:
            log.info("%s", call.line())
        if self._timer is None:
            self._arm(now)

    def flush(self, everything: bool = False) -> None:
        """Write the counts of the windows that ended (of all, at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()  # (a no-op when it is the timer calling)
            self._timer = None
        for call, repeats in self.repeats.due(self.clock(), everything):
            self._summary(call, repeats)
        if not everything:
            self._arm(self.clock())

    def _arm(self, now: float) -> None:
        end = self.repeats.next_end()
        if end is None:
            return
        later = self._call_later or asyncio.get_running_loop().call_later
        self._timer = later(max(SLACK, end + self.repeats.window - now), self.flush)

    def _summary(self, call: Call, repeats: int) -> None:
        log.info("%s: %d more in %gs", call.line(), repeats, self.repeats.window)
