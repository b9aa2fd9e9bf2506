"""The queue the nodes share. Every node assigns from its own in-memory queue first (the tasks
submitted to it: its fast path), and every assignment is a fenced claim in PostgreSQL (one
`UPDATE ... FOR UPDATE SKIP LOCKED` statement: a task another node took first is forgotten). A node
whose agents have room its queue does not fill takes queued tasks of the other nodes from the
database: at once when a node says it has new work (NOTIFY), else on a slow poll. The work of a lost
node is moved here by the node that declared it lost."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hived.events import EventBus, TaskSubmitted
from hived.model.states import AttemptReason, TaskStatus
from hived.nodes.limits import ClusterLimits, Taken
from hived.nodes.loops import Loops
from hived.store import nodes as node_store
from hived.store import tasks as task_store
from hived.store.db import Database
from hived.store.ends import FINISH_CURRENT, finish_args, finish_current, finished_ids
from hived.store.wire import Wire
from hived.tasks.attempts import Ending, InFlight, ReadyTask
from hived.tasks.dispatcher import Dispatcher

log = logging.getLogger("hived.nodes")
POLL = 1.0  # s between looks at the shared queue while agents are idle and nobody said anything
ANNOUNCE_EVERY = 0.01  # s: submits within it are announced in one notification


class Won(set[str]):
    """The task ids a claim won, with what it found of the limits they take (hived.nodes.limits)."""

    taken: Taken | None = None


class Sharing:
    def __init__(self, db: Database, dispatcher: Dispatcher, wire: Wire, events: EventBus) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.wire = wire
        self._more = False  # the last look found work
        self._capacity = 1  # what this node's agents can run at once, as of the last look
        self._look = asyncio.Event()  # a node has new work, or the last look found some
        self._news = asyncio.Event()  # tasks were submitted here since the last announcement
        self._loops = Loops()
        self.taken = 0  # tasks this node took from the shared queue (GET /nodes)
        self.lost_claims = 0  # assignments another node won first
        self.limits: ClusterLimits | None = None  # limits held cluster-wide (set by the cluster)
        self.peers: Callable[[], int | None] = lambda: None  # other nodes up (None: not known)
        wire.on("work", lambda _sender, _body: self._look.set())
        wire.on("cancel", self._cancelled_elsewhere)
        wire.on_reconnect.append(self._look.set)
        events.subscribe(TaskSubmitted, lambda _e: self._news.set())

    def start(self) -> None:
        self._loops.start(("nodes-look", self._look_loop()), ("nodes-announce", self._announce_loop()))

    async def stop(self) -> None:
        await self._loops.stop()

    # --- the dispatcher's SharedQueue ---------------------------------------------------------------

    def claim(self, conn: Any, rows: list[dict[str, Any]], now: datetime) -> set[str]:
        taken = self.limits.take(conn, rows, now) if self.limits is not None else None
        if taken is not None and taken.refused:  # a limit held cluster-wide has no room for these
            rows = [r for r in rows if r["task_id"] not in taken.refused]
        won = Won(node_store.claim(conn, self.wire.node, rows))
        if won:
            task_store.insert_attempts(conn, [r for r in rows if r["task_id"] in won], now)
        if taken is not None and self.limits is not None:
            self.limits.hold(conn, won, taken)
            won.taken = taken
        return won

    def claimed(self, won: set[str], entries: list[InFlight]) -> list[InFlight]:
        taken = getattr(won, "taken", None)
        refused = taken.refused if taken is not None else set()
        lost = [e for e in entries if e.task.id not in won and e.task.id not in refused]
        self.lost_claims += len(lost)
        d = self.dispatcher
        d._unassign(lost, requeue=False)  # another node took these first: forget them
        d._unassign([e for e in entries if e.task.id in refused])  # they wait in the gate again
        if taken is not None and self.limits is not None:
            self.limits.settle(taken)
        if lost:  # (not for those refused: the gate's copy now says why; an end or a reload wakes it)
            d.wake()
        return [e for e in entries if e.task.id in won]

    def finish(self, conn: Any, rows: list[dict[str, Any]], now: datetime) -> set[str]:
        """Write these attempts' ends where each is still its task's current attempt (another node
        may have moved the task meanwhile); returns those tasks' ids."""
        current = finish_current(conn, rows, now)
        if self.limits is not None:  # the attempts' holds of limits end with them
            self.limits.ended(conn, rows)
        return current

    def finish_statement(
        self, rows: list[dict[str, Any]], now: datetime
    ) -> tuple[str, tuple[Any, ...], Callable[[Any], set[str]]] | None:
        """`finish` as one statement (FINISH_CURRENT, its arguments and the reader of its rows),
        when that is all it writes: no hold of a limit ends with these attempts."""
        if self.limits is not None and self.limits.frees_holds(rows):
            return None
        return FINISH_CURRENT, finish_args(rows, now), finished_ids

    def idle(self, queued: int) -> None:
        room = self._capacity - queued
        if room > 0 and self._more and self._gated_here(room) < room:  # low, and the last look found work
            self._look.set()

    def _gated_here(self, most: int) -> int:
        """Tasks waiting in the limits gate that an agent here can run, counted up to `most` (of the
        first few hundred: tasks no agent here can run may wait there too, for another node's)."""
        if most <= 0 or not (waiting := self.dispatcher.gate.waiting):
            return 0
        able = {c.slot.capabilities for c in self.dispatcher.channels.values() if c.routable}
        found = 0
        for ticket in itertools.islice(waiting.values(), 4 * most + 100):
            if any(ticket.requires <= caps for caps in able):
                found += 1
                if found >= most:
                    break
        return found

    def capacity(self) -> int:
        """What this node's agents can run at once."""
        self._capacity = sum(c.slot.max_concurrency for c in self.dispatcher.channels.values() if c.routable)
        return self._capacity

    # --- looking for work -----------------------------------------------------------------------------

    async def _look_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._look.wait(), POLL)
            self._look.clear()
            try:
                self._more = bool(await self.look())
            except Exception as exc:  # the database is away: the poll tries again
                log.warning("nodes: looking at the shared queue failed: %s", exc)
                self._more = False

    async def look(self) -> int:
        """Queued tasks this node does not hold enter its queue, up to two rounds of its agents.
        Returns how many."""
        d = self.dispatcher
        want = 2 * self.capacity() - len(d.queue)  # two rounds of every agent, with what is here
        want -= self._gated_here(want)
        if want <= 0 or d.paused or d.closing or d.drained:
            return 0
        rows = await self.db.read(lambda c: node_store.shared_work(c, d.holds, want))
        able = {c.slot.capabilities for c in d.channels.values() if c.routable}
        for row in rows:
            task = ReadyTask.from_row(row)  # (one no agent here can run would only wait here, and
            if not d.holds(task.id) and any(task.requires <= caps for caps in able):  # at a limit's
                d.enqueue(task)  # head, hold its key's line)
        self.taken += len(rows)
        return len(rows)

    async def _announce_loop(self) -> None:
        while True:
            await self._news.wait()
            await asyncio.sleep(ANNOUNCE_EVERY)
            self._news.clear()
            if self.peers() != 0:  # alone, nobody would look (a joining node looks when it starts)
                await self.wire.send("work", {})

    # --- cancels and lost nodes -------------------------------------------------------------------

    async def cancel_elsewhere(self, task_id: str, error: str | None = None) -> bool:
        """Cancel a task this node does not hold: queued on another node, or running on another
        node's agent (`error`: why, when not an operator's cancel). Recorded here (fenced: still
        queued, or still that attempt), then the other nodes are told (the one running it stops the
        handler). False when it is not unfinished."""
        now, running = self.dispatcher.clock.now(), False

        def write(conn: Any) -> bool:
            nonlocal running
            if task_store.end_queued(conn, task_id, now, "cancelled", error or "cancelled"):
                return True
            current = node_store.current_leases(conn, [task_id])
            if task_id not in current:
                return False
            row = {"task_id": task_id, "lease": current[task_id], "status": "cancelled", "error": error}
            if self.limits is not None:
                self.limits.ended(conn, [row])
                running = True
            task_store.finish(conn, [{**row, "outcome": "cancelled", "reason": AttemptReason.CANCELLED}], now)
            return True

        if not await self.db.write(write):
            return False
        self.dispatcher._finished(task_id, TaskStatus.CANCELLED, {})
        if running and self.limits is not None:  # its holds were freed here: the copy is read again
            self.limits.look_again()
        await self.wire.send("cancel", {"task": task_id})
        return True

    def _cancelled_elsewhere(self, _sender: str, body: dict[str, Any]) -> None:
        task_id = body.get("task")
        if isinstance(task_id, str):
            self.dispatcher.cancelled_elsewhere(task_id)

    async def end_fenced(self, fenced: list[InFlight]) -> None:
        """The attempts this node stopped while the database was away, if still its own (no other
        node moved them meanwhile), end with reason `node_lost` and follow their retry policy."""
        error = "this node lost the database for most of node_timeout; the attempt was stopped"
        copies = [InFlight(e.task, "", e.lease, e.attempt) for e in fenced]  # their slots are free already
        await self.dispatcher._end_attempts(
            [Ending(c, False, error=error, reason=AttemptReason.NODE_LOST) for c in copies]
        )

    async def take_over(self, node: str) -> int:
        """A lost node's attempts end with reason `node_lost` and follow their retry policy here."""
        rows = await self.db.write(lambda c: node_store.attempts_on(c, node))
        error = f"node {node} was lost (no heartbeat for node_timeout)"
        endings = [
            Ending(
                InFlight(ReadyTask.from_row(r), r["agent_id"] or "", r["lease"] or 0, r["attempts"]),
                False,
                error=error,
                reason=AttemptReason.NODE_LOST,
            )
            for r in rows
        ]
        await self.dispatcher._end_attempts(endings)
        if endings:
            log.warning("node %s lost: %d attempts moved to the queue", node, len(endings))
        return len(endings)
