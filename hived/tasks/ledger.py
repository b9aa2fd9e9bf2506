"""The dispatcher's book of tasks: which are ready, which wait out a backoff, which attempt is in
flight on which agent, and how an attempt ends: several ends in one commit, then the agent's slot is
freed and the task retried or finished, with one event.

An end is claimed before it is committed (`InFlight.ending`): a second end of the same attempt (a
cancel racing the agent's result, a result racing a loss) waits until that commit is over and then
sees it, so a task ends one way only, and its attempt's outcome says the same. A cancel is an end
like the others; a queued task leaves the queue before its cancel is committed, so it cannot be
assigned meanwhile."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol

from hived.clock import Clock
from hived.events import AttemptEnded, EventBus, TaskEnded, TaskRetrying
from hived.limits.gate import LimitGate
from hived.model.states import AGENT_FAULTS, AttemptReason, TaskStatus
from hived.store import ends
from hived.store import limits as limit_store
from hived.store import tasks as task_store
from hived.store.db import Database
from hived.store.prepared import OneStatement
from hived.tasks.attempts import AgentChannel, Ending, InFlight, ReadyTask, decide
from hived.tasks.holds import Holds
from hived.tasks.packed import ID, PRIORITY, REQUIRES, SEQ, Packed, pack, requires_of, unpack
from hived.tasks.retries import Retries
from hived.tasks.routing import ReadyQueue

R = AttemptReason


class SharedQueue(Protocol):
    """The queue shared by the nodes of a cluster (hived.nodes.sharing), where this hived is one of
    several on one PostgreSQL."""

    def claim(self, conn: Any, rows: list[dict[str, Any]], now: datetime) -> set[str]:
        """Record the assignments another node has not taken first; returns their task ids."""

    def claimed(self, won: set[str], entries: list[InFlight]) -> list[InFlight]:
        """After the claim's commit: those not won are forgotten (another node took them first) or
        wait again (a limit held cluster-wide had no room); returns those won."""

    def finish(self, conn: Any, rows: list[dict[str, Any]], now: datetime) -> set[str]:
        """Write these ends of attempts where each attempt is still its task's current one;
        returns those task ids."""

    def finish_statement(self, rows: list[dict[str, Any]], now: datetime) -> tuple[str, Any, Any] | None:
        """`finish` as one statement: its SQL, arguments and the reader of its rows (the ids), when
        that is all it writes; None otherwise."""

    def idle(self, queued: int) -> None:
        """A dispatch round begins with `queued` tasks in the local queue: fetch more when low."""

    async def cancel_elsewhere(self, task_id: str, error: str | None = None) -> bool:
        """Cancel a task this node does not hold (`error`: why, when not an operator's cancel);
        False when it is not unfinished anywhere."""


class Ledger:
    def __init__(self, db: Database, clock: Clock, events: EventBus, gate: LimitGate | None = None) -> None:
        self.db = db
        self.clock = clock
        self.events = events
        # Tasks that name limits wait in the gate, not in `queue` (hived/limits/gate.py).
        self.gate = gate or LimitGate(lambda: clock.now().timestamp())
        self.queue = ReadyQueue()
        # Pending tasks, packed (hived.tasks.packed: tuples the collector does not track) until assigned.
        self.ready: dict[str, Packed] = {}
        self.in_flight: dict[str, InFlight] = {}
        self.channels: dict[str, AgentChannel] = {}
        self.retries = Retries(clock)
        self.scheduled = Retries(clock)  # submitted with --delay/--at, not yet due (hived.tasks.timers)
        self.holding = Holds()  # pauses and cordons
        self._kick = asyncio.Event()  # wakes the dispatch loop: work or room appeared
        self.released = asyncio.Event()  # set whenever attempts leave an agent (ended or requeued)
        self.shared: SharedQueue | None = None  # set when this hived is a node of a cluster

    def holds(self, task_id: str) -> bool:
        """Whether the task is unfinished here: queued, in flight, or waiting out a retry."""
        return (
            task_id in self.ready
            or task_id in self.in_flight
            or task_id in self.retries
            or task_id in self.scheduled
        )

    def held_by(self, agent_id: str) -> list[str]:
        channel = self.channels.get(agent_id)
        return sorted(channel.held) if channel else []

    def depth_by_priority(self) -> dict[tuple[str, int], int]:
        """Queued tasks by state and priority, counted in C (`/status` asks with 200,000 queued)."""
        ready = Counter(map(itemgetter(PRIORITY), self.ready.values()))
        retrying = Counter(self.retries.priorities())
        return {
            **{(TaskStatus.PENDING, p): n for p, n in ready.items()},
            **{(TaskStatus.RETRYING, p): n for p, n in retrying.items()},
        }

    def queue_depth(self) -> int:
        return len(self.queue) + len(self.retries) + self.gate.waiting_count()

    # --- cancellation -----------------------------------------------------------------------------

    async def cancel(self, task_id: str, error: str | None = None) -> bool:
        """Cancel a queued or running task (`error`: why, when not an operator's cancel); False when
        it had already ended (or is unknown here)."""
        entry = await self._settled(task_id)
        if task_id in self.ready or task_id in self.retries or task_id in self.scheduled:
            return await self._end_queued(task_id, error=error or "cancelled")
        if entry is None and self.shared is not None:  # queued or running on another node
            return await self.shared.cancel_elsewhere(task_id, error)
        if entry is None or entry.ending:
            return False
        why = error or "cancelled by operator"
        cancel = Ending(entry, False, error=why, reason=R.CANCELLED, cancel=True)
        await self._end_attempts([cancel])
        return True

    async def stop_attempts(self, task_ids: list[str], error: str, requeue: bool = False) -> None:
        """End these tasks' attempts in flight with reason `budget_exceeded` (their tasks fail, or with
        `requeue` go back to the queue, the attempt not counted), and tell their agents to stop them."""
        await self._all_settled(task_ids)
        entries = [e for t in task_ids if (e := self.in_flight.get(t)) and not e.ending and not e.cancelled]
        await self._end_attempts(
            [Ending(e, False, error=error, reason=R.BUDGET_EXCEEDED, requeue=requeue) for e in entries]
        )
        for entry in entries:
            if (channel := self.channels.get(entry.agent_id)) is None:
                continue
            if entry in channel.inbox:  # not delivered yet: it never will be
                channel.inbox.remove(entry)
            elif entry.delivered:
                channel.cancels.add(entry.task.id)
                channel.wake.set()

    async def expire(self, task_id: str, error: str) -> bool:
        """A task not started by its `expires_at` fails (reason `expired`, in its error); False when
        it has started (in flight, or waiting to retry) or ended."""
        packed = self.ready.get(task_id)
        task = unpack(packed) if packed is not None else self.scheduled.get(task_id)
        if task is None or task.attempts:
            return False
        return await self._end_queued(task_id, TaskStatus.FAILED, error)

    async def _end_queued(
        self, task_id: str, status: TaskStatus = TaskStatus.CANCELLED, error: str = "cancelled"
    ) -> bool:
        packed = self.ready.pop(task_id, None)
        task = unpack(packed) if packed is not None else None
        waiting = self.retries.take(task_id) if task is None else None
        timed = self.scheduled.take(task_id) if task is None and waiting is None else None
        self.queue.discard(task_id)
        self.gate.discard(task_id)
        now = self.clock.now()
        try:
            changed = await self.db.write(lambda c: task_store.end_queued(c, task_id, now, status, error))
        except Exception:  # not recorded: it waits as it did
            if waiting is not None:
                self._schedule_retry(*waiting)
            elif timed is not None:
                self.scheduled.schedule(*timed)
            elif task is not None:
                self._enqueue(task)
                self._kick.set()
            raise
        if changed:
            self._finished(task_id, status, {} if status == TaskStatus.CANCELLED else {"error": error})
        return bool(changed)

    def cancelled_elsewhere(self, task_id: str) -> None:
        """Another node recorded this task's cancel (hived.nodes): forget it if it is queued here;
        stop its handler if it runs here (its result will be refused)."""
        if self.ready.pop(task_id, None) or self.retries.take(task_id) or self.scheduled.take(task_id):
            self.queue.discard(task_id)
            self.gate.discard(task_id)
        entry = self.in_flight.get(task_id)
        if entry is not None and not entry.ending and not entry.cancelled:
            entry.cancelled = True
            channel = self.channels.get(entry.agent_id)
            if channel is not None and entry.delivered:
                channel.cancels.add(task_id)
                channel.wake.set()
            else:
                if channel is not None and entry in channel.inbox:
                    channel.inbox.remove(entry)
                self._release(entry)

    def fence_all(self) -> list[InFlight]:
        """This node lost the database for most of node_timeout (hived.nodes): the other nodes will
        soon move its attempts, so its handlers stop now (no task runs on two nodes at once). Nothing
        is written; returns the attempts, for their ends to be written once the database is back."""
        fenced = [e for e in self.in_flight.values() if not e.ending and not e.cancelled]
        for entry in fenced:
            self.cancelled_elsewhere(entry.task.id)
        return fenced

    def rehold(self) -> None:
        """The pauses or cordons changed: queued tasks now held leave the queue, held ones now free
        go back, and the dispatcher looks again."""
        for packed in self.holding.refresh(self.ready, self.queue):
            self.queue.push(packed[ID], packed[PRIORITY], packed[SEQ], requires_of(packed[REQUIRES]))
        self._kick.set()

    # --- ends of attempts -------------------------------------------------------------------------

    async def _settled(self, task_id: str) -> InFlight | None:
        """The attempt in flight for this task, once a commit under way that ends it is over."""
        entry = self.in_flight.get(task_id)
        while entry is not None and entry.committing:
            assert entry.settled is not None
            await entry.settled.wait()
            entry = self.in_flight.get(task_id)
        return entry

    async def _all_settled(self, task_ids: list[str]) -> None:
        """Return once no commit that ends one of these tasks' attempts is under way."""
        while waiting := [e for t in task_ids if (e := self.in_flight.get(t)) and e.committing]:
            assert waiting[0].settled is not None
            await waiting[0].settled.wait()

    async def _end_attempts(self, endings: list[Ending]) -> None:
        """End several attempts in one commit, then release their agents and retry or finish them.
        Each is claimed before the first await: an attempt claimed already (ended, or being ended)
        is left out."""
        endings = [e for e in endings if not e.entry.ending]
        if not endings:
            return
        now = self.clock.now()
        settled = asyncio.Event()
        for ending in endings:
            ending.entry.ending, ending.entry.settled = True, settled
            decide(ending, now)
        rows = [e.row for e in endings]
        closes = [e.closes for e in endings if e.closes is not None]
        throttled = [e.entry.task.id for e in endings if e.requeue]
        shared = self.shared

        def write(conn: Any) -> set[str] | None:
            current = None  # every end is written (one hived owns the database)
            if shared is not None:  # only those still current (another node may have moved some)
                current = shared.finish(conn, rows, now)
            else:
                task_store.finish(conn, rows, now)
            if closes or throttled:  # a throttled report closes its limit in the same commit
                limit_store.close_limits(conn, closes)
                limit_store.count_throttled(conn, throttled)
            return current

        alone = None  # on PostgreSQL, alone in its batch: one statement in autocommit
        if not (closes or throttled) and self.db.dialect == "postgresql":
            alone = (
                shared.finish_statement(rows, now) if shared is not None else ends.finish_statement(rows, now)
            )
        try:
            current = await self.db.write(write if alone is None else OneStatement(write, *alone))
        except Exception:
            for ending in endings:  # not recorded: the agent reports again, or the lease check ends it
                ending.entry.ending = False
            raise
        else:
            for ending in endings:
                if current is None or ending.entry.task.id in current:
                    self._after_end(ending)
                else:  # another node moved the task meanwhile (this node was lost): only the slot is left
                    self._release(ending.entry)
        finally:
            settled.set()

    def _after_end(self, e: Ending) -> None:
        entry, task, ok, reason, row = e.entry, e.entry.task, e.ok, e.reason, e.row
        if e.cancel:
            self._after_cancel(entry)
            return
        mono = self.clock.monotonic()
        ran = mono - entry.delivered_mono if entry.delivered else None
        self.events.publish(AttemptEnded(task.id, row["outcome"], reason or ("" if ok else "error"), ran))
        channel = self.channels.get(entry.agent_id)
        if channel is not None and (ok or reason in AGENT_FAULTS):
            channel.breaker.record(ok, mono)
        self._release(entry)
        task.attempts = entry.attempt
        retry_in = e.retry_in
        if e.requeue:  # throttled: its limit closes, it waits in the queue again
            task.throttled += 1
            if e.closes is not None:
                self.gate.close(*e.closes)
            self._enqueue(task)
            self._kick.set()
        elif retry_in is not None:
            self.events.publish(
                TaskRetrying(task.id, entry.agent_id, row["error"], reason, entry.attempt, round(retry_in, 3))
            )
            self._schedule_retry(task, retry_in)
        else:
            self._finished(task.id, TaskStatus(row["status"]), row)

    def _after_cancel(self, entry: InFlight) -> None:
        """A cancel is recorded: an agent running the attempt is told to stop (it reports, and its
        slot frees then); an attempt not delivered yet never will be."""
        entry.cancelled = True
        channel = self.channels.get(entry.agent_id)
        if channel is not None and entry.delivered:
            channel.cancels.add(entry.task.id)
            channel.wake.set()
        else:
            if channel is not None and entry in channel.inbox:
                channel.inbox.remove(entry)
            self._release(entry)
        self._finished(entry.task.id, TaskStatus.CANCELLED, {})

    def _release(self, entry: InFlight) -> None:
        self.released.set()
        self.in_flight.pop(entry.task.id, None)
        self.gate.release(entry.task.id)
        if channel := self.channels.get(entry.agent_id):
            channel.held.discard(entry.task.id)
            channel.slot.in_flight = max(0, channel.slot.in_flight - 1)
            self._kick.set()

    def _unassign(self, entries: list[InFlight], requeue: bool = True) -> None:
        """The assignment was not committed (the database is unreachable): back to the queue, or
        forgotten (`requeue=False`: a task whose own insert was not committed either)."""
        for entry in entries:
            if self.in_flight.get(entry.task.id) is not entry:
                continue
            self.in_flight.pop(entry.task.id)
            self.gate.release(entry.task.id, give_back=True)
            self.released.set()
            if channel := self.channels.get(entry.agent_id):
                channel.held.discard(entry.task.id)
                channel.slot.in_flight = max(0, channel.slot.in_flight - 1)
                if channel.budget is not None:
                    channel.budget += 1
            if requeue:
                self._enqueue(entry.task)

    def _finished(self, task_id: str, status: TaskStatus, row: dict[str, Any]) -> None:
        self.events.publish(
            TaskEnded(task_id, row.get("agent_id"), row.get("error"), str(status), row.get("result"))
        )

    # --- waiting tasks ----------------------------------------------------------------------------

    def _enqueue(self, task: ReadyTask) -> None:
        self.ready[task.id] = pack(task)
        if (self.holding.pauses or task.run_id) and self.holding.park(task):
            return  # held by a pause: pending, out of the queue until resumed
        if task.limits and self.gate.park(task):
            return  # waits in the limits gate (unless it names no limit still defined)
        self.queue.push(task.id, task.priority, task.seq, task.requires)

    def _schedule_retry(self, task: ReadyTask, delay: float) -> None:
        self.retries.schedule(task, delay)
        self._kick.set()
