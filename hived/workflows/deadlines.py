"""Run timeouts: sleep until the earliest deadline of the active runs (or until a run with one is
added), then hand the runs whose time is up to the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hived.clock import Clock
from hived.model.states import RunStatus
from hived.workflows.live import Change, LiveRun


class Deadlines:
    def __init__(
        self, runs: dict[str, LiveRun], clock: Clock, deliver: Callable[[LiveRun, Change], None]
    ) -> None:
        self.runs = runs
        self.clock = clock
        self.changed = asyncio.Event()  # a run with a deadline was added
        self._deliver = deliver

    async def follow(self) -> None:
        while True:
            self.changed.clear()
            self.check()
            deadlines = [r.deadline for r in self.runs.values() if r.deadline and not r.done]
            wait = (min(deadlines) - self.clock.now()).total_seconds() if deadlines else None
            await self.clock.wait(self.changed, None if wait is None else max(wait, 0.001))

    def check(self) -> int:
        """Expire every active run past its deadline; returns how many."""
        now = self.clock.now()
        expired = [r for r in self.runs.values() if r.deadline and now >= r.deadline and not r.done]
        for run in expired:
            run.deadline = None
            why = f"run timed out after {run.spec.timeout or 0:g}s"
            self._deliver(run, lambda r, t, why=why: r.end(RunStatus.FAILED, why, t))
        return len(expired)
