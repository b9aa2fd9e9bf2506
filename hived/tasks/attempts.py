"""An attempt while it runs, and how its end is decided: the records the dispatcher keeps in memory
(a ready task, an attempt in flight, an ending, an agent's channel) and the pure rule from an
attempt's outcome to its task's next state. No I/O."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hived.agents.breaker import Breaker
from hived.model.backoff import backoff_delay
from hived.model.expressions import ExpressionError, is_true
from hived.model.schemas import Lease
from hived.model.states import AttemptReason, TaskStatus
from hived.model.workspaces import workspace_env
from hived.tasks.routing import AgentSlot


@functools.lru_cache(maxsize=4096)
def capability_set(requires: tuple[str, ...]) -> frozenset[str]:
    """One frozenset per distinct `requires` (a handful in practice), shared by the tasks that name
    it: 100,000 queued tasks hold one set, not 100,000 (less memory, less for the collector)."""
    return frozenset(requires)


@dataclass(slots=True)
class ReadyTask:
    id: str
    type: str
    payload: dict[str, Any]
    priority: int
    seq: int
    requires: frozenset[str]
    options: dict[str, Any]
    attempts: int
    max_attempts: int
    run_id: str | None = None
    created_at: datetime | None = None
    throttled: int = 0  # attempts ended by a throttled report: not counted toward max_attempts

    @property
    def limits(self) -> list[dict[str, Any]]:
        """The limits it takes ({name, key, units}, keys rendered at submit); [] for most tasks."""
        return self.options.get("limits") or []  # type: ignore[no-any-return]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ReadyTask:
        return cls(
            id=row["id"],
            type=row["type"],
            payload=row["payload"],
            priority=row["priority"],
            seq=row["seq"],
            requires=capability_set(tuple(row["requires"] or ())),
            options=row["options"] or {},
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            run_id=row.get("run_id"),
            created_at=row.get("created_at"),
            throttled=row.get("throttled") or 0,
        )


@dataclass
class InFlight:
    task: ReadyTask
    agent_id: str
    lease: int
    attempt: int
    delivered: bool = False
    cancelled: bool = False
    delivered_mono: float = 0.0
    delivered_at: datetime | None = None  # when the agent was sent the lease (the task's started_at)
    ending: bool = False  # an end of this attempt is committed, or being committed
    settled: asyncio.Event | None = None  # set once the commit of that end is over, either way
    waiting: bool = False  # a `tty: true` attempt waits for input (hived/agents/terminals.py)
    terminal: dict[str, str] | None = None  # where its tmux session is: host, socket, session

    @property
    def committing(self) -> bool:
        """A commit that ends this attempt is under way: wait for `settled` before judging it."""
        return self.ending and self.settled is not None and not self.settled.is_set()

    @property
    def status(self) -> TaskStatus:
        if self.waiting:
            return TaskStatus.WAITING_INPUT
        return TaskStatus.RUNNING if self.delivered else TaskStatus.ASSIGNED

    def lease_message(self) -> Lease:
        """What the agent is sent to run this attempt."""
        task = self.task
        return Lease(
            task_id=task.id,
            attempt=self.attempt,
            lease=self.lease,
            type=task.type,
            payload=task.payload,
            timeout=task.options.get("timeout"),
            stall_timeout=task.options.get("stall_timeout"),
            env={**({"HIVE_RUN_ID": task.run_id} if task.run_id else {}), **workspace_env(task.options)},
        )


@dataclass
class Ending:
    """One attempt to end: what the agent said, then what hived decided (row, retry delay)."""

    entry: InFlight
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    reason: str | None = None
    output: str | None = None
    cancel: bool = False  # the operator's cancel: the agent is told to stop, and reports after
    row: dict[str, Any] = field(default_factory=dict)
    retry_in: float | None = None
    closes: tuple[str, float] | None = None  # throttled: (limit, closed until, epoch seconds)
    requeue: bool = False  # throttled: back to the queue at once, the attempt not counted


@dataclass
class AgentChannel:
    """An agent's side of dispatch: its routing slot, its undelivered leases, its wake-up."""

    slot: AgentSlot
    routable: bool = True
    inbox: list[InFlight] = field(default_factory=list)
    cancels: set[str] = field(default_factory=set)
    inputs: list[dict[str, str]] = field(default_factory=list)  # lines to type: {task_id, text}
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    asking: int = 0  # the slots the agent's open long-poll asked for
    held: set[str] = field(default_factory=set)  # task ids in flight on this agent
    breaker: Breaker = field(default_factory=Breaker)
    budget: int | None = None  # tasks this incarnation may still be given (max_tasks)


T = TaskStatus


def decide(e: Ending, now: datetime) -> None:
    """What an ended attempt means for its task: completed, cancelled, retrying (after a backoff
    delay) or failed; fills `e.row` (what is committed) and `e.retry_in`."""
    task, entry = e.entry.task, e.entry
    if e.ok and (check := task.options.get("success_when")):
        e.ok, e.error, e.reason = check_success(check, e.result)
    e.row = {
        "task_id": task.id,
        "agent_id": entry.agent_id,
        "lease": entry.lease,
        "started_at": entry.delivered_at,
        "result": e.result,
        "error": e.error,
        "reason": e.reason,
        "output": e.output,
    }
    if e.ok:
        e.row.update(status=entry.status.transition(T.COMPLETED), outcome="completed", error=None)
    elif e.reason == AttemptReason.CANCELLED:
        e.row.update(status=entry.status.transition(T.CANCELLED), outcome="cancelled")
    elif e.reason == AttemptReason.THROTTLED:
        e.row.update(status=entry.status.transition(T.PENDING), outcome="throttled")
        e.requeue = True
    elif e.reason == AttemptReason.BUDGET_EXCEEDED:  # not retried: it would spend again
        e.row.update(status=entry.status.transition(T.PENDING if e.requeue else T.FAILED), outcome="failed")
    elif (counted := entry.attempt - task.throttled) < task.max_attempts:
        policy = task.options.get("retry") or {}
        e.retry_in = backoff_delay(
            counted,
            policy.get("initial", 1.0),
            policy.get("multiplier", 2.0),
            policy.get("max", 60.0),
            policy.get("jitter", 0.1),
        )
        due = now + timedelta(seconds=e.retry_in)
        e.row.update(status=entry.status.transition(T.RETRYING), outcome="failed", next_attempt_at=due)
    else:
        e.row.update(status=entry.status.transition(T.FAILED), outcome="failed")


def check_success(expression: str, result: dict[str, Any] | None) -> tuple[bool, str | None, str | None]:
    """`success_when` over the result: "exit 0 but did nothing" fails the attempt."""
    try:
        if is_true(expression, {"result": result or {}}):
            return True, None, None
        return False, f"success_when {expression!r} was false", AttemptReason.CHECK_FAILED
    except ExpressionError as exc:
        return False, f"success_when: {exc}", AttemptReason.CHECK_FAILED
