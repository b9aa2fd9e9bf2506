"""`running`, the display state of a delivered attempt, committed in one write per window.

An attempt's lease is committed when it is assigned; that it reached its agent (`assigned` →
`running`, and the task's `started_at`) is only shown. So deliveries are gathered for `WINDOW`
seconds and marked together, and an attempt that ends within the window is never marked: its end
sets `started_at` itself. A no-op task costs one commit fewer, and a busy hived one per window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from hived.store import tasks as task_store
from hived.store.db import Database
from hived.tasks.attempts import InFlight

log = logging.getLogger("hived.dispatch")

WINDOW = 0.05  # seconds (loop time: a batching window, not a time the tests are about)


class RunningMarks:
    def __init__(self, db: Database, current: Callable[[InFlight], bool]) -> None:
        self.db = db
        self.current = current  # is this attempt still in flight, and not ending?
        self._pending: list[InFlight] = []
        self._timer: asyncio.Task[None] | None = None

    def delivered(self, entries: list[InFlight]) -> None:
        self._pending.extend(entries)
        if self._timer is None:
            self._timer = asyncio.ensure_future(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(WINDOW)
        self._timer = None
        await self.flush()

    async def flush(self) -> None:
        """Mark now what was delivered and has not ended (tests call it to read a settled state)."""
        entries, self._pending = self._pending, []
        marks = [(e.task.id, e.lease, e.delivered_at) for e in entries if self.current(e)]
        if not marks:
            return
        try:
            await self.db.write(lambda c: task_store.mark_running(c, marks))
        except Exception as exc:  # the lease stands either way: only the shown state lags
            log.warning("could not mark %d task(s) running: %s", len(marks), exc)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
