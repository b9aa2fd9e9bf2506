"""Time, as the daemon's core reads it: wall time for what is stored and shown, monotonic time for
durations, and timed waits. The dispatcher, the agent manager, the health monitor, the agent
protocol and the workflow engine take a `Clock` (the system clock by default), so tests drive them
with a `FakeClock`: time stands still until the test advances it, and then every sleeper and timed
wait whose moment has come wakes, in order."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall time, UTC (what is stored and shown)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations, deadlines in memory)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds` of this clock's time."""
        ...

    async def wait(self, event: asyncio.Event, timeout: float | None) -> bool:
        """Wait until `event` is set (True) or `timeout` s of this clock's time pass (False);
        None waits for the event alone."""
        ...


class SystemClock:
    """The real time of the host."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout: float | None) -> bool:
        try:
            await asyncio.wait_for(event.wait(), timeout=timeout)
        except TimeoutError:
            return False
        return True


SYSTEM_CLOCK = SystemClock()


class FakeClock:
    """A clock that moves only when told (`advance`); for in-process tests. Sleepers wake in the
    order of their deadlines, each at its own moment, with the event loop let run in between."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self._start = start
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._new_sleeper = asyncio.Event()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    @property
    def sleepers(self) -> int:
        """How many sleeps and timed waits are pending now."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def next_deadline(self) -> float | None:
        """When the earliest pending sleeper wakes (monotonic seconds), or None."""
        pending = [deadline for deadline, _, future in self._sleepers if not future.done()]
        return min(pending, default=None)

    def _timer(self, seconds: float) -> asyncio.Future[None]:
        """A future that `advance` resolves once `seconds` have passed from now (counted now, not
        when its awaiter first runs)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._order), future))
        self._new_sleeper.set()
        return future

    async def until_sleeping(self, count: int = 1) -> None:
        """Return once at least `count` sleeps or timed waits are pending: what a test awaits before
        it advances the clock, so the code under test has reached its wait."""
        while self.sleepers < count:
            self._new_sleeper.clear()
            await self._new_sleeper.wait()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        await self._timer(seconds)

    async def wait(self, event: asyncio.Event, timeout: float | None) -> bool:
        if event.is_set():
            return True
        if timeout is None:
            await event.wait()
            return True
        waiter = asyncio.ensure_future(event.wait())
        timer = self._timer(timeout)
        try:
            await asyncio.wait([waiter, timer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            timer.cancel()
        return event.is_set()

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking every sleeper due on the way at its deadline."""
        target = self._elapsed + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            if future.done():
                continue
            self._elapsed = max(self._elapsed, deadline)
            future.set_result(None)
            for _ in range(3):  # let the woken one run, and what it starts
                await asyncio.sleep(0)
        self._elapsed = target
        await asyncio.sleep(0)
