"""The hive-agent runtime: register, heartbeat, long-poll for leases, run up to max_concurrency
attempts at once, and hand every result in until hived acknowledges it (across hived restarts).
Three loops share one state (a fourth on a node of a cluster: hivectl.agent.fence):
- heartbeats every `heartbeat_interval` with the tasks the agent answers for and its tree's RSS/CPU;
- the work loop keeps one long-poll out (slots=0 when full, so cancels arrive at once), carrying the
  results that wait; after taking work it holds the next poll back up to TAKE_NEXT_WINDOW, so that a
  quick task's result and the request for the next one are one round trip;
- the reporter sends results at once (slots=0, wait=0) when no long-poll will carry them soon: one is
  already out, or the agent takes no work (all slots busy, draining).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hivectl.agent.connection import AgentGone, Connection, Refused
from hivectl.agent.exec_handler import STOP_GRACE as HANDLER_STOP_GRACE
from hivectl.agent.fence import fenced_outcome, fencing
from hivectl.agent.handlers import CANCELLED, ERROR, INTERRUPTED, AttemptOutcome, Handler, StopRequest
from hivectl.agent.outbox import Outbox
from hivectl.agent.resources import TreeStats
from hivectl.agent.tty_link import TerminalLink
from hivectl.agent.tty_options import CURRENT as TERMINAL_SINK
from hivectl.agent.usage import CURRENT as USAGE_SINK
from hivectl.agent.usage import UsageBook
from hivectl.agent.wire import (
    AttemptResult,
    HeartbeatRequest,
    Lease,
    RegisterRequest,
    RegisterResponse,
    WorkRequest,
    WorkResponse,
)

log = logging.getLogger("hive-agent")

POLL_WAIT = 20.0  # seconds hived may hold a long-poll
POLL_TIMEOUT_MARGIN = 15.0  # the HTTP timeout of a long-poll is its wait plus this
FINAL_REPORT_GRACE = 2.0  # on stop, how long to try handing in the last results
EMPTY_POLL_PAUSE = 0.1  # after a long-poll hived answered early with nothing, wait this long, doubling
EMPTY_POLL_PAUSE_MAX = 2.0  # up to this (hived answers at once while it shuts down)
TAKE_NEXT_WINDOW = 0.005  # after taking work, how long the next poll waits for a result to carry
CANCEL_AGAIN = 0.5  # on stop, a loop still running after this long is cancelled again
NOT_ACCEPTING = frozenset({"draining", "stopped", "failed"})


@dataclass
class Session:
    """What registration established: who the agent is, and how it runs tasks."""

    agent_id: str
    name: str
    incarnation: int
    max_concurrency: int
    heartbeat_interval: float
    handler: Handler
    fence_after: float | None = None  # hived.nodes: stop the handlers after this long without hived

    @classmethod
    def from_reply(cls, reply: RegisterResponse, handler: Handler) -> Session:
        return cls(
            agent_id=reply.agent.id,
            name=reply.agent.name,
            incarnation=reply.incarnation,
            max_concurrency=reply.agent.max_concurrency,
            heartbeat_interval=reply.heartbeat_interval,
            handler=handler,
            fence_after=reply.fence_after,
        )


@dataclass
class Running:
    lease: Lease
    stop: StopRequest = field(default_factory=StopRequest)
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    fenced: float | None = None  # stopped after hived was away this many seconds (agent.fence)


class AgentRuntime:
    """Runs one registered agent until `stopping` is set (SIGTERM, SIGINT) or hived disowns it."""

    def __init__(
        self,
        connection: Connection,
        session: Session,
        *,
        poll_wait: float = POLL_WAIT,
        stats: TreeStats | None = None,
        stopping: asyncio.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = connection
        self.session = session
        self.poll_wait = poll_wait
        self.stats = stats or TreeStats()
        self.clock = clock
        self.running: dict[str, Running] = {}
        self.outbox = Outbox()
        self.usage = UsageBook()  # increments until hived has them
        self.accepting = True
        self.polling = False
        self.slots_changed = asyncio.Event()  # a slot freed, or the agent takes work again
        self.result_added = asyncio.Event()
        self.stopping = stopping or asyncio.Event()  # set it to stop the agent (SIGTERM, SIGINT)
        self.terminals = TerminalLink(connection, session.agent_id, session.incarnation)  # tty: true

    # --- life cycle -------------------------------------------------------------------------------

    async def run(self) -> int:
        """0 after a requested stop or when hived disowned the agent, 1 after an error."""
        loops = [
            asyncio.create_task(self.heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self.work_loop(), name="work"),
            asyncio.create_task(self.report_loop(), name="report"),
            *fencing(self.session.fence_after, self.conn.down_for, self.running),
        ]
        stop = asyncio.create_task(self.stopping.wait())
        done, _ = await asyncio.wait([*loops, stop], return_when=asyncio.FIRST_COMPLETED)
        code, report = 0, True
        for task in done:
            if task is stop or task.cancelled() or (exc := task.exception()) is None:
                continue
            if isinstance(exc, AgentGone):
                log.info("hived no longer knows this agent (%s): stopping", exc)
                report = False
            elif isinstance(exc, Refused):
                log.error("stopping: %s", exc)
                code = 1
            else:
                log.error("stopping after an internal error", exc_info=exc)
                code = 1
        stop.cancel()
        await self.shutdown(loops, report=report)
        return code

    async def shutdown(self, loops: list[asyncio.Task[Any]], report: bool) -> None:
        self.accepting = False
        await cancel_all(loops)
        tasks = [item.task for item in self.running.values() if item.task is not None]
        for item in self.running.values():
            item.stop.set(INTERRUPTED)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=HANDLER_STOP_GRACE + 2)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if report and len(self.outbox):
            await self.final_report()
        log.info("stopped")

    async def final_report(self) -> None:
        results = self.outbox.take()
        deadline = self.clock() + FINAL_REPORT_GRACE
        body = WorkRequest(incarnation=self.session.incarnation, slots=0, wait=0, results=results)
        try:
            async with asyncio.timeout(FINAL_REPORT_GRACE):
                reply = await self.conn.work(self.session.agent_id, body, deadline=deadline)
        except Exception as exc:
            log.warning(
                "could not hand in %d result(s) before exiting: %s",
                len(results),
                str(exc) or type(exc).__name__,
            )
            return
        self._settle(results, reply)

    # --- loops ------------------------------------------------------------------------------------

    async def heartbeat_loop(self) -> None:
        while True:
            started = self.clock()
            rss, cpu = self.stats.sample(children=bool(self.running))
            batches = self.usage.take()
            body = HeartbeatRequest(
                incarnation=self.session.incarnation,
                running=sorted(self.held_task_ids()),
                rss_bytes=rss,
                cpu_percent=cpu,
                usage=[batch.to_json() for batch in batches],
            )
            interval = self.session.heartbeat_interval
            try:
                reply = await self.conn.heartbeat(
                    self.session.agent_id, body, timeout=max(10.0, 2 * interval)
                )
            except BaseException:
                self.usage.release(batches)  # sent again, unchanged, with the next heartbeat
                raise
            self.usage.settle(batches)
            self.cancel(reply.cancel)
            self.set_status(reply.status)
            self.session.heartbeat_interval = reply.heartbeat_interval
            await asyncio.sleep(max(0.0, started + reply.heartbeat_interval - self.clock()))

    async def work_loop(self) -> None:
        pause = 0.0
        while True:
            # Always one long-poll out, even with every slot busy (slots=0): hived then answers it at
            # once with a cancel, or when this agent's results free a slot.
            slots = max(0, self.free_slots())
            results = self.outbox.take()
            body = WorkRequest(
                incarnation=self.session.incarnation, slots=slots, wait=self.poll_wait, results=results
            )
            self.polling = True
            asked = self.clock()
            try:
                reply = await self.conn.work(
                    self.session.agent_id, body, timeout=self.poll_wait + POLL_TIMEOUT_MARGIN
                )
            except BaseException:
                self.outbox.release(results)
                raise
            finally:
                self.polling = False
            self.apply(reply, results)
            early = self.clock() - asked < self.poll_wait / 2
            if reply.tasks and not self.outbox.has_waiting():
                # Complete-and-take-next: the first result of what just started rides with the next
                # poll, one request instead of two, unless nothing ends within TAKE_NEXT_WINDOW.
                pause = 0.0
                await self.rest(TAKE_NEXT_WINDOW)
            elif _woken(reply, results) or not early or (slots == 0 and self.free_slots()):
                pause = 0.0  # (a full agent's poll answered early: a slot is free, ask for work now)
            else:  # woken for nothing, or hived shutting down (it then answers every poll at once)
                pause = min(EMPTY_POLL_PAUSE_MAX, max(EMPTY_POLL_PAUSE, 2 * pause))
                await self.rest(pause)

    async def rest(self, pause: float) -> None:
        """Wait `pause` seconds before the next long-poll, less if a slot frees or a result waits."""
        self.slots_changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(pause):
                await self.slots_changed.wait()

    async def report_loop(self) -> None:
        while True:
            await self.result_added.wait()
            await asyncio.sleep(0)  # results of handlers ending in this loop turn go together
            self.result_added.clear()
            if not (self.polling or self.free_slots() <= 0) or not self.outbox.has_waiting():
                continue  # the next long-poll, about to start, carries them
            results = self.outbox.take()
            body = WorkRequest(incarnation=self.session.incarnation, slots=0, wait=0, results=results)
            try:
                reply = await self.conn.work(self.session.agent_id, body)
            except BaseException:
                self.outbox.release(results)
                raise
            self.apply(reply, results)

    # --- replies ----------------------------------------------------------------------------------

    def apply(self, reply: WorkResponse, sent: list[AttemptResult]) -> None:
        self._settle(sent, reply)
        self.cancel(reply.cancel)
        self.terminals.deliver(reply.input, self.session.handler)
        self.set_status(reply.status)
        for lease in reply.tasks:
            self.start(lease)

    def _settle(self, sent: list[AttemptResult], reply: WorkResponse) -> None:
        for ack in self.outbox.settle(sent, reply.acks):
            level = logging.INFO if ack.reason == CANCELLED else logging.WARNING  # expected after a cancel
            log.log(level, "task %s: hived refused the result (%s)", ack.task_id, ack.reason or "no reason")
        if self.outbox.has_waiting():
            self.result_added.set()

    def set_status(self, status: str) -> None:
        accepting = status not in NOT_ACCEPTING and not self.stopping.is_set()
        if accepting != self.accepting:
            log.info("hived says the agent is %s: %s work", status, "taking" if accepting else "taking no")
            self.accepting = accepting
            self.slots_changed.set()
            self.result_added.set()

    def cancel(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            if item := self.running.get(task_id):
                log.info("task %s: cancel requested by hived", task_id)
                item.stop.set(CANCELLED)

    def free_slots(self) -> int:
        if not self.accepting or self.stopping.is_set():
            return 0
        return max(0, self.session.max_concurrency - len(self.running))

    def held_task_ids(self) -> set[str]:
        """The tasks this agent answers for: running, or ended with the result not yet acknowledged."""
        return set(self.running) | self.outbox.task_ids()

    # --- attempts ---------------------------------------------------------------------------------

    def start(self, lease: Lease) -> None:
        current = self.running.get(lease.task_id)
        if current is not None:
            if current.lease.lease == lease.lease:
                return  # the same lease twice
            log.warning(
                "task %s: lease %d replaces lease %d; stopping the older attempt",
                lease.task_id,
                lease.lease,
                current.lease.lease,
            )
            current.stop.set(CANCELLED)
        item = Running(lease, started=self.clock())
        self.running[lease.task_id] = item
        item.task = asyncio.create_task(self.execute(item), name=f"task-{lease.task_id}")

    async def execute(self, item: Running) -> None:
        lease = item.lease
        log.info("task %s: attempt %d started (type %s)", lease.task_id, lease.attempt, lease.type)
        USAGE_SINK.set(self.usage.sink(lease.task_id, lease.lease))  # this task's context only
        TERMINAL_SINK.set(self.terminals.sink(lease))
        try:
            outcome = await self.session.handler.run(lease, item.stop)
        except Exception as exc:  # a bug in the agent must fail the attempt, not the agent
            log.error("task %s: the handler raised", lease.task_id, exc_info=exc)
            outcome = AttemptOutcome.failed(ERROR, f"hive-agent: {type(exc).__name__}: {exc}")
        outcome = fenced_outcome(item.fenced, outcome)
        took = self.clock() - item.started
        log.info(
            "task %s: attempt %d %s in %.3fs%s",
            lease.task_id,
            lease.attempt,
            "succeeded" if outcome.ok else f"failed ({outcome.reason})",
            took,
            f": {outcome.error}" if outcome.error else "",
        )
        unsent = self.usage.take_attempt(lease.lease)
        self.outbox.add(
            AttemptResult(
                task_id=lease.task_id,
                attempt=lease.attempt,
                lease=lease.lease,
                ok=outcome.ok,
                result=outcome.result,
                error=outcome.error,
                reason=outcome.reason,
                output=outcome.output or None,
                usage=[batch.to_json() for batch in unsent] or None,
                workspace=outcome.workspace,
            )
        )
        if self.running.get(lease.task_id) is item:
            del self.running[lease.task_id]
        self.slots_changed.set()
        self.result_added.set()


def _woken(reply: WorkResponse, results: list[AttemptResult]) -> bool:
    """The poll came back with something to do: work, a cancel, a line to type, or acks."""
    return bool(reply.tasks or reply.cancel or reply.input or results)


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait for them. One that goes on after a cancellation (a cancellation lost
    inside asyncio or a library) is cancelled again: an agent asked to stop must stop."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=CANCEL_AGAIN)
        for task in pending:
            log.warning("%s did not stop when cancelled; cancelling it again", task.get_name())
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved (run() reports the ones that matter)


async def register(
    conn: Connection, request: RegisterRequest, stopping: asyncio.Event
) -> RegisterResponse | None:
    """Register, retrying while hived is unreachable; None if a stop was requested meanwhile."""
    call = asyncio.create_task(conn.register(request))
    stop = asyncio.create_task(stopping.wait())
    await asyncio.wait({call, stop}, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if not call.done():
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
        return None
    return call.result()
