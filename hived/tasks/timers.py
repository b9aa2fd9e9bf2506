"""Time-driven moves of queued tasks: a scheduled task (`--delay`, `--at`) becomes `pending` when it
is due, and a task not started by its `expires_at` (`--expires-in`) fails with reason `expired`.
Both are durable: the times are stored with the task and reloaded at start (`recover`); a time that
passed while hived was down takes effect at once. Time comes from the dispatcher's clock, so a fake
clock drives them in tests (`run_pending`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from hived.model.states import TaskStatus
from hived.store import tasks as task_store
from hived.store.db import DatabaseUnavailable
from hived.tasks.attempts import ReadyTask
from hived.tasks.dispatcher import Dispatcher
from hived.tasks.retries import Retries

log = logging.getLogger("hived.dispatch")
RETRY_DELAY = 0.5  # after a failed write, the due tasks are tried again this much later


def expiry_error(expires_at: datetime) -> str:
    return f"expired: not started by {expires_at.isoformat()} (expires_in)"


class Timers:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.clock = dispatcher.clock
        self.expiries = Retries(self.clock)  # tasks that expire, by when
        self._expires_at: dict[str, datetime] = {}
        self._loops: list[asyncio.Task[None]] = []

    def _seconds_until(self, when: datetime) -> float:
        return max(0.0, (when - self.clock.now()).total_seconds())

    def schedule(self, task: ReadyTask, due: datetime) -> None:
        """A committed scheduled task: pending once `due`."""
        self.dispatcher.scheduled.schedule(task, self._seconds_until(due))

    def expire_at(self, task: ReadyTask, when: datetime) -> None:
        """A committed task fails with reason `expired` if it has not started by `when`."""
        self._expires_at[task.id] = when
        self.expiries.schedule(task, self._seconds_until(when))

    async def recover(self) -> int:
        """Scheduled and expiring tasks of the last run; returns how many were found."""
        rows = await self.dispatcher.db.read(task_store.load_timed)
        for row in rows:
            task = ReadyTask.from_row(row)
            if row["status"] == TaskStatus.SCHEDULED:
                self.schedule(task, row["not_before"] or self.clock.now())
            if row["expires_at"] is not None:
                self.expire_at(task, row["expires_at"])
        return len(rows)

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._follow(self.dispatcher.scheduled, self._start_due), name="scheduled"),
            asyncio.create_task(self._follow(self.expiries, self._expire_due), name="expiries"),
        ]

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            try:
                await loop
            except asyncio.CancelledError:
                pass

    async def run_pending(self) -> None:
        """Do once, now, what the loops would (in-process tests drive time this way)."""
        await self._start_due()
        await self._expire_due()

    async def _follow(self, waiting: Retries, act: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await act()
            except DatabaseUnavailable as exc:
                log.warning("scheduled tasks: %s; retrying", exc)
                await self.clock.sleep(RETRY_DELAY)
            except Exception:
                log.exception("scheduled tasks failed; retrying")
                await self.clock.sleep(RETRY_DELAY)
            await waiting.wait_next()

    async def _start_due(self) -> None:
        """Due scheduled tasks become pending (one commit), then enter the queue."""
        scheduled = self.dispatcher.scheduled
        due = scheduled.pop_due()
        if not due:
            return
        try:
            await self.dispatcher.db.write(lambda c: task_store.start_scheduled(c, [t.id for t in due]))
        except Exception:
            for task in due:  # not recorded: still scheduled, tried again shortly
                scheduled.schedule(task, RETRY_DELAY)
            raise
        for task in due:
            self.dispatcher.enqueue(task)

    async def _expire_due(self) -> None:
        for task in self.expiries.pop_due():
            when = self._expires_at.pop(task.id, None)
            if when is None:
                continue
            try:
                await self.dispatcher.expire(task.id, expiry_error(when))
            except Exception:
                self.expire_at(task, when)  # not recorded: tried again shortly
                raise
