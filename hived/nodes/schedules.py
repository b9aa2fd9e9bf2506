"""Schedules on several nodes (hived.nodes): every node holds every schedule (the one whose claim of a
start time wins starts it, hived.nodes.cluster), so one applied, changed, paused or deleted on a node
is told to the others (NOTIFY), which reload the schedules from the database; a slow poll behind it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from hived.schedules.service import SchedulesService
from hived.store.wire import Wire

log = logging.getLogger("hived.nodes")

KIND = "schedules"
POLL = 5.0  # s between reloads when nobody said anything


class SharedSchedules:
    def __init__(self, service: SchedulesService, wire: Wire) -> None:
        self.service = service
        self.wire = wire
        self._look = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        wire.on(KIND, lambda _sender, _body: self._look.set())
        wire.on_reconnect.append(self._look.set)
        service.announce = self._announce

    def start(self) -> None:
        self._loop = asyncio.create_task(self._reload_loop(), name="nodes-schedules")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop

    async def _announce(self, name: str) -> None:
        await self.wire.send(KIND, {"name": name})

    async def _reload_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._look.wait(), POLL)
            self._look.clear()
            try:
                await self.service.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: the poll tries again
                log.warning("nodes: reloading the schedules failed: %s", exc)
