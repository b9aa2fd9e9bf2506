"""The task queue and dispatcher: assignment to agents, leases with fencing tokens, long-poll
delivery, results, and the recovery at start. What is ready or in flight, and how attempts end
(results, losses, cancels), is its base, the Ledger (hived/tasks/ledger.py).

One instance of this class assigns work. The database stays the truth: every state change is
committed (in group commits) before anyone is told about it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hived.bounds import Limits
from hived.clock import SYSTEM_CLOCK, Clock
from hived.events import EventBus, TaskAssigned
from hived.limits.gate import LimitGate
from hived.model.schemas import AttemptResult, Lease, ResultAck
from hived.model.states import AttemptReason
from hived.model.usage import usage_of_result
from hived.redact import scrub
from hived.store import limits as limit_store
from hived.store import tasks as task_store
from hived.store.db import Database, DatabaseUnavailable
from hived.tasks.attempts import AgentChannel, Ending, InFlight, ReadyTask
from hived.tasks.ledger import Ledger
from hived.tasks.marks import RunningMarks
from hived.tasks.packed import unpack
from hived.tasks.recovery import recover
from hived.tasks.routing import AgentSlot, Assigner, MergedQueue, ReadyQueue

if TYPE_CHECKING:
    from hived.model.nodes import Numbers

log = logging.getLogger("hived.dispatch")
R = AttemptReason


class Dispatcher(Ledger):
    def __init__(
        self,
        db: Database,
        clock: Clock = SYSTEM_CLOCK,
        fifo_share: int = 10,
        events: EventBus | None = None,
        limits: Limits | None = None,
        gate: LimitGate | None = None,
    ) -> None:
        super().__init__(db, clock, events or EventBus(), gate)
        self.limits = limits or Limits()
        self.assigner = Assigner(fifo_share=fifo_share)
        self._seq = itertools.count(1)
        self._lease = itertools.count(1)
        self.closing = False
        self.paused = False  # draining for shutdown: nothing new is assigned
        self.drained = False  # this node is drained (hived.nodes): nothing new is assigned here
        self._loops: list[asyncio.Task[None]] = []
        self.marks = RunningMarks(db, self._current)
        self.numbers: Numbers | None = None  # a node's numbers (hived.nodes): set by the cluster

    # --- start-up ---------------------------------------------------------------------------------

    async def recover(
        self,
        adopted: dict[str, tuple[list[str], int]] | None = None,
        here: Callable[[str], bool] | None = None,
    ) -> int:
        """Load what the last run left (hived.tasks.recovery); returns the unfinished tasks found."""
        found, seq, lease = await recover(self, self.attach, adopted or {}, here)
        self._seq, self._lease = itertools.count(seq + 1), itertools.count(lease + 1)
        return found

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._dispatch_loop(), name="dispatch"),
            asyncio.create_task(self._retry_loop(), name="retries"),
        ]

    async def stop(self) -> None:
        self.marks.stop()
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            try:
                await loop
            except asyncio.CancelledError:
                pass
        for channel in self.channels.values():
            channel.wake.set()

    # --- submissions ------------------------------------------------------------------------------

    def next_seq(self) -> int:
        if self.numbers is not None:
            return self.numbers.seq(int(self.clock.now().timestamp() * 1000))
        return next(self._seq)

    def next_lease(self) -> int:
        return self.numbers.lease() if self.numbers is not None else next(self._lease)

    def enqueue(self, task: ReadyTask) -> None:
        """A committed pending task enters the queue."""
        self._enqueue(task)
        self._kick.set()

    def wake(self) -> None:
        """Look for work to assign now (the limits gate's timer: a bucket refilled, a limit reopened)."""
        self._kick.set()

    # --- agents -----------------------------------------------------------------------------------

    def attach(
        self,
        agent_id: str,
        capabilities: list[str],
        max_concurrency: int,
        breaker: tuple[int, float] | None = None,
        budget: int | None = None,
    ) -> AgentChannel:
        channel = self.channels.get(agent_id)
        if channel is None:
            channel = AgentChannel(AgentSlot(agent_id, frozenset(capabilities), max_concurrency))
            self.channels[agent_id] = channel
        channel.slot.capabilities = frozenset(capabilities)
        channel.slot.max_concurrency = max_concurrency
        if breaker is not None:
            channel.breaker.threshold, channel.breaker.cooldown = breaker
        channel.budget = budget
        channel.routable = True
        self._kick.set()
        return channel

    def _current(self, entry: InFlight) -> bool:
        return self.in_flight.get(entry.task.id) is entry and not entry.ending

    def set_routable(self, agent_id: str, routable: bool) -> None:
        if channel := self.channels.get(agent_id):
            channel.routable = routable
            if routable:
                self._kick.set()

    async def agent_gone(
        self, agent_id: str, reason: str = R.AGENT_LOST, error: str = "the agent was lost"
    ) -> int:
        """Every attempt the agent held fails with `reason` and follows its retry policy."""
        channel = self.channels.pop(agent_id, None)
        if channel is None:
            return 0
        channel.wake.set()
        self.released.set()
        entries = [self.in_flight[t] for t in list(channel.held) if t in self.in_flight]
        for entry in [e for e in entries if e.cancelled]:  # recorded already: only its slot is left
            self._release(entry)
        entries = [e for e in entries if not e.cancelled]
        await self._end_attempts([Ending(e, False, error=error, reason=reason) for e in entries])
        self._kick.set()
        return len(entries)

    # --- the agent protocol -----------------------------------------------------------------------

    async def report(self, agent_id: str, results: list[AttemptResult]) -> list[ResultAck]:
        await self._all_settled([res.task_id for res in results])
        acks = []
        endings: list[Ending] = []
        for res in results:  # judged and claimed without an await between: nothing ends them meanwhile
            entry = self.in_flight.get(res.task_id)
            if entry is None or entry.lease != res.lease or entry.agent_id != agent_id:
                acks.append(
                    ResultAck(
                        task_id=res.task_id,
                        accepted=False,
                        reason="stale: this attempt's lease is no longer valid",
                    )
                )
                continue
            if entry.cancelled:
                self._release(entry)
                acks.append(ResultAck(task_id=res.task_id, accepted=False, reason=R.CANCELLED))
                continue
            if entry.ending:
                acks.append(ResultAck(task_id=res.task_id, accepted=False, reason="stale: it has ended"))
                continue
            # What handlers print or return is stored and shown: secrets are masked on the way in.
            ok, result, error, reason = res.ok, scrub(res.result), scrub(res.error), res.reason
            closes = None
            if reason == R.THROTTLED and not ok:  # back-pressure: closes the limit it names
                closes, problem = self.gate.throttle(result)
                if problem:
                    reason, error = R.ERROR, problem
            if problem := self.limits.result_problem(result):
                ok, result, (reason, error) = False, None, problem
            elif ok and result and "usage" in result and (bad := usage_of_result(result)[1]):
                ok, reason, error = False, R.RESULT_INVALID, f"result: {bad}"  # its spend is not counted
            error, output = self.limits.tail(error), self.limits.tail(scrub(res.output))
            endings.append(Ending(entry, ok, result, error, reason, output, closes=closes))
            acks.append(ResultAck(task_id=res.task_id, accepted=True))
        await self._end_attempts(endings)
        if results and (channel := self.channels.get(agent_id)) and channel.asking == 0:
            channel.wake.set()  # a poll the agent left open while full returns now: a slot is free
        return acks

    async def take(self, agent_id: str, slots: int, wait: float) -> tuple[list[Lease], list[str]]:
        """Leases for this agent (waiting up to `wait` s for one), and tasks it must cancel."""
        channel = self.channels.get(agent_id)
        if channel is None:
            return [], []
        # An agent that is full still keeps a poll open (slots=0): it hears of cancels at once.
        busy = (slots > 0 and channel.inbox) or channel.cancels or channel.inputs
        if not busy and wait > 0 and not self.closing:
            channel.wake.clear()
            channel.asking = slots
            self._kick.set()
            await self.clock.wait(channel.wake, wait)
        entries = channel.inbox if slots > 0 else []
        if slots > 0:
            channel.inbox = []
        cancels = sorted(channel.cancels)
        channel.cancels.clear()
        if entries:
            now, mono = self.clock.now(), self.clock.monotonic()
            for entry in entries:
                entry.delivered, entry.delivered_at, entry.delivered_mono = True, now, mono
            self.marks.delivered(entries)
        return [entry.lease_message() for entry in entries], cancels

    async def reconcile(self, agent_id: str, running: set[str], grace: float) -> int:
        """Attempts this agent should hold (delivered over `grace` s ago) but does not report: the
        lease never reached it, or it lost the task. They fail with reason `lease_lost`."""
        channel = self.channels.get(agent_id)
        if channel is None:
            return 0
        cutoff = self.clock.monotonic() - grace
        lost = [
            self.in_flight[t]
            for t in channel.held - running
            if t in self.in_flight
            and self.in_flight[t].delivered
            and self.in_flight[t].delivered_mono < cutoff
            and not self.in_flight[t].ending
        ]
        error = "the agent does not hold this attempt"
        await self._end_attempts([Ending(e, False, error=error, reason=R.LEASE_LOST) for e in lost])
        return len(lost)

    # --- internals --------------------------------------------------------------------------------

    async def run_pending(self) -> None:
        """Do once, now, what the loops would: tasks whose backoff is over enter the queue, and ready
        tasks are assigned to free agents. In-process tests drive the dispatcher this way, without
        its loops (as arq's burst mode runs a worker to completion)."""
        for task in self.retries.pop_due():
            self._enqueue(task)
        await self._dispatch_once()

    async def _retry_loop(self) -> None:
        while True:
            for task in self.retries.pop_due():
                self.enqueue(task)
            await self.retries.wait_next()

    async def _dispatch_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            try:
                await self._dispatch_once()
            except DatabaseUnavailable as exc:
                log.warning("dispatch: %s; retrying", exc)
                await self.clock.sleep(0.5)
                self._kick.set()
            except Exception:
                log.exception("dispatch failed; retrying")
                await self.clock.sleep(0.5)
                self._kick.set()

    def _free_slots(self) -> list[AgentSlot]:
        mono, cordoned, spent = self.clock.monotonic(), self.holding.cordoned, self.holding.spent
        if "*" in spent:  # the daemon's budget for the day is spent (hived.usage.budgets)
            return []
        slots: list[AgentSlot] = []
        for channel in self.channels.values():
            channel.slot.limit = channel.breaker.capacity(mono, channel.slot.max_concurrency)
            if channel.budget is not None:
                channel.slot.limit = min(channel.slot.limit, channel.slot.in_flight + channel.budget)
            held = channel.slot.agent_id in cordoned or channel.slot.agent_id in spent
            if channel.routable and channel.slot.free > 0 and not held:
                slots.append(channel.slot)
        return slots

    async def _dispatch_once(self) -> None:
        if self.paused or self.drained:
            return
        if self.shared is not None:
            self.shared.idle(len(self.queue))  # running low: fetch from the shared queue (hived.nodes)
        if not (len(self.queue) or self.gate.waiting):
            return
        slots = self._free_slots()
        if not slots:
            return
        # Tasks that name limits and may start now join this round (at most a task per free slot).
        let_through, free = ReadyQueue(), sum(s.free for s in slots)
        for task in self.gate.promote(free, lambda req: any(req <= s.capabilities for s in slots)):
            let_through.push(task.id, task.priority, task.seq, task.requires)
        entries = self._claim(self.assigner.assign(MergedQueue(self.queue, let_through), slots))
        self.gate.end_round()  # those no agent took wait again
        if not entries:
            return
        now, buckets = self.clock.now(), self.gate.bucket_writes()
        rows, shared = self.assignment_rows(entries), self.shared

        def write(conn: Any) -> set[str] | None:  # the buckets' new levels go with the assignments
            won = shared.claim(conn, rows, now) if shared is not None else task_store.assign(conn, rows, now)
            limit_store.save_buckets(conn, buckets)
            return won

        try:
            won = await self.db.write(write)
        except Exception:
            self.gate.not_written(buckets)
            self._unassign(entries)
            raise
        if shared is not None and won is not None:  # those another node took first, or a limit refused
            entries = shared.claimed(won, entries)
        await self.deliver(entries, now)

    def claim(self, task: ReadyTask) -> InFlight | None:
        """Assign a task whose insert is not committed yet, if the dispatcher would assign it at once
        (nothing is queued, an able agent has a free slot): its insert and `assignment_rows` then go
        in one commit, and an idle round trip saves a commit and a turn of the dispatch loop. The
        caller then calls `deliver`, or `unclaim` if that commit failed."""
        held = self.holding.holds(task)  # by a pause: it is not assigned, at submit either
        if task.limits or held or self.paused or self.closing or len(self.queue) or self.retries.has_due():
            return None  # a task that names limits goes through the gate, in a dispatch round
        slots = self._free_slots()
        if not any(task.requires <= slot.capabilities for slot in slots):
            return None
        self._enqueue(task)
        entries = self._claim(self.assigner.assign(self.queue, slots))
        return entries[0] if entries else None

    def unclaim(self, entry: InFlight) -> None:
        self._unassign([entry], requeue=False)

    def _claim(self, pairs: list[tuple[str, AgentSlot]]) -> list[InFlight]:
        mono = self.clock.monotonic()
        entries = []
        for task_id, slot in pairs:
            task = unpack(self.ready.pop(task_id))
            if task.limits:
                self.gate.take(task)
            entry = InFlight(task, slot.agent_id, self.next_lease(), task.attempts + 1)
            self.in_flight[task_id] = entry
            channel = self.channels[slot.agent_id]
            channel.held.add(task_id)
            channel.breaker.on_assigned(mono)
            if channel.budget is not None:
                channel.budget -= 1
            entries.append(entry)
        return entries

    @staticmethod
    def assignment_rows(entries: list[InFlight]) -> list[dict[str, Any]]:
        return [
            {"task_id": e.task.id, "agent_id": e.agent_id, "lease": e.lease, "number": e.attempt}
            for e in entries
        ]

    async def deliver(self, entries: list[InFlight], now: datetime) -> None:
        """Committed assignments go to their agents' inboxes (and open polls)."""
        for entry in entries:
            created = entry.task.created_at if entry.attempt == 1 else None
            waited = max(0.0, (now - created).total_seconds()) if created is not None else None
            self.events.publish(TaskAssigned(entry.task.id, entry.attempt, waited))
        for entry in entries:
            if self.in_flight.get(entry.task.id) is not entry:
                continue  # ended while we committed (its agent was lost)
            channel = self.channels.get(entry.agent_id)
            if channel is None:
                lost = Ending(entry, False, error="the agent was lost", reason=R.AGENT_LOST)
                await self._end_attempts([lost])
                continue
            channel.inbox.append(entry)
            channel.wake.set()
