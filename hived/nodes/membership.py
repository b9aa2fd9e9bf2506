"""A node's membership: its row (joined at start, under its name's advisory lock), its heartbeat,
and the nodes it finds lost. Every node looks for silent nodes; the one whose update marks a node
`lost` moves that node's attempts (reason `node_lost`) and workflow runs. A node that finds itself
marked lost (its network was cut for longer than node_timeout) forgets the attempts that were moved
(their results would be refused anyway: the leases changed) and joins again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hived.model.nodes import Numbers
from hived.nodes.loops import Loops
from hived.store import nodes as node_store
from hived.store import tasks as task_store
from hived.store.db import Database
from hived.tasks.attempts import InFlight
from hived.tasks.dispatcher import Dispatcher

log = logging.getLogger("hived.nodes")
FENCE_AFTER = 0.6  # of node_timeout without a heartbeat: this node stops its handlers


class Membership:
    def __init__(
        self, db: Database, dispatcher: Dispatcher, name: str, timeout: float, address: str | None = None
    ) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.name = name
        self.timeout = timeout
        self.address = address
        self.every = max(0.2, min(1.0, timeout / 5))  # s between heartbeats (and looks for lost nodes)
        self.status = "active"
        self.peers: int | None = None  # other nodes up, at the last heartbeat (None: before the first)
        self.events_seen: Callable[[], int] = lambda: 0  # the event bus's last id (set by the cluster)
        self.alone_mark = 0  # the bus's last id before the last heartbeat that found no other node up
        self.lost_handlers: list[Callable[[str], Awaitable[Any]]] = []  # moves a lost node's work
        self.beat_handlers: list[Callable[[], Awaitable[Any]]] = []  # after each heartbeat
        self._loops = Loops()
        self.last_ok = time.monotonic()  # when a heartbeat last reached the database
        self.fenced: list[InFlight] | None = None  # attempts stopped while the database was away
        self.fenced_ended: Callable[[list[InFlight]], Awaitable[Any]] | None = None  # writes their ends

    async def join(self) -> dict[str, Any]:
        host, pid = socket.gethostname(), os.getpid()
        row = await self.db.write(lambda c: node_store.join(c, self.name, host, pid, self.address))
        seq, lease = await self.db.read(task_store.max_seq_and_lease)
        self.dispatcher.numbers = Numbers(row["slot"], seq, lease)
        await self.db.write(lambda c: node_store.place_unplaced(c, self.name))
        log.info("node %s joined (slot %d)", self.name, row["slot"])
        return row

    def start(self) -> None:
        self.last_ok = time.monotonic()
        self._loops.start(("nodes-heartbeat", self._beat_loop()), ("nodes-fence", self._fence_loop()))

    async def leave(self) -> None:
        await self._loops.stop()
        with contextlib.suppress(Exception):
            await self.db.write(
                lambda c: node_store.set_status(c, self.name, "stopped", ("active", "draining"))
            )

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: so are this node's writes
                log.warning("node %s: heartbeat failed: %s", self.name, exc)

    async def _fence_loop(self) -> None:
        """Stop this node's handlers before the others can call it lost: after FENCE_AFTER of
        node_timeout without a heartbeat reaching the database (their clock starts at its last one)."""
        while True:
            await asyncio.sleep(self.every / 2)
            silent = time.monotonic() - self.last_ok > self.timeout * FENCE_AFTER
            if self.fenced is None and silent and self.peers:  # alone, nobody would move its work
                self.dispatcher.drained = True
                self.fenced = self.dispatcher.fence_all()
                log.error(
                    "node %s: no heartbeat reached the database for %.1fs: %d attempts stopped",
                    self.name,
                    time.monotonic() - self.last_ok,
                    len(self.fenced),
                )

    async def beat(self) -> None:
        sent, seen = time.monotonic(), self.events_seen()
        status, self.peers = await self.db.write(lambda c: node_store.heartbeat(c, self.name))
        if not self.peers:
            self.alone_mark = seen
        self.last_ok = sent
        if status == "lost":
            await self._rejoin()
            status = "active"
        if self.fenced is not None:  # back in time: the attempts stopped are retried as node_lost
            fenced, self.fenced = self.fenced, None
            if fenced and self.fenced_ended is not None:
                await self.fenced_ended(fenced)
        self.status = status or "active"
        self.dispatcher.drained = self.status == "draining"
        if not self.dispatcher.drained:
            self.dispatcher.wake()
        lost = await self.db.write(lambda c: node_store.mark_lost(c, self.name, self.timeout))
        for node in lost:
            log.warning("node %s is lost (silent for %.0fs): moving its work here", node, self.timeout)
            for handler in self.lost_handlers:
                await handler(node)
        for after in self.beat_handlers:
            await after()

    async def _rejoin(self) -> None:
        """This node was declared lost: the attempts that were moved are not its own any more."""
        d = self.dispatcher
        held = list(d.in_flight)
        current = await self.db.write(lambda c: node_store.current_leases(c, held)) if held else {}
        moved = [t for t in held if current.get(t) != d.in_flight[t].lease]
        for task_id in moved:
            d.cancelled_elsewhere(task_id)
        log.error(
            "node %s was declared lost by another node; %d attempts were moved; joining again",
            self.name,
            len(moved),
        )
        await self.db.write(lambda c: node_store.set_status(c, self.name, "active", ("lost",)))
