"""Waiting for a run to change: the long-poll `GET /runs/{id}?wait=S&since=N` parks here until the
engine says the run moved (a write committed, a step's task assigned, the run left this hived's
hands), or its time is up."""

from __future__ import annotations

import asyncio

from hived.clock import Clock


class RunWatchers:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._waiting: dict[str, list[asyncio.Event]] = {}

    async def wait(self, run_id: str, timeout: float) -> bool:
        """Wait until `notify(run_id)` or `timeout` s; True when notified."""
        event = asyncio.Event()
        self._waiting.setdefault(run_id, []).append(event)
        try:
            return await self.clock.wait(event, timeout)
        finally:
            waiting = self._waiting.get(run_id)
            if waiting is not None and event in waiting:
                waiting.remove(event)
                if not waiting:
                    del self._waiting[run_id]

    def notify(self, run_id: str) -> None:
        for event in self._waiting.pop(run_id, ()):
            event.set()

    def __len__(self) -> int:
        return sum(len(w) for w in self._waiting.values())
