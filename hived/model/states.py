"""Every status in Hive (agent, task, workflow run, workflow step) and the reasons an attempt ends,
each status with one table of legal transitions and one `transition()` that refuses the others.

A status is never assigned directly where it changes: the code calls `current.transition(new)` (or
`transition(current, new)`), which returns `new` or raises `IllegalTransition`, as supervisord's
`change_state` asserts its legal source states. Final sets are defined here once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar


class IllegalTransition(ValueError):
    """A status change the state machine does not allow: a bug in hived, never a user error."""


class Status(StrEnum):
    """A status with a table of legal moves (`TRANSITIONS`, below) and a set of final values."""

    def transition(self, new: Status | str) -> Status:
        return transition(self, type(self)(new))

    @property
    def final(self) -> bool:
        return self in FINAL[type(self)]


class AgentStatus(Status):
    STARTING = "starting"
    ACTIVE = "active"
    BUSY = "busy"
    DRAINING = "draining"
    STOPPED = "stopped"
    UNHEALTHY = "unhealthy"
    FAILED = "failed"
    LOST = "lost"
    UNSCHEDULED = "unscheduled"  # placed on a node that is not known (hived.nodes): nobody runs it


class NodeStatus(Status):
    """A hived of a cluster on one PostgreSQL (hived.nodes)."""

    ACTIVE = "active"
    DRAINING = "draining"  # its agents take no new work
    LOST = "lost"  # silent for node_timeout: its attempts were moved to other nodes
    STOPPED = "stopped"  # shut down cleanly


class TaskStatus(Status):
    SCHEDULED = "scheduled"  # submitted with --delay or --at: pending once due
    PENDING = "pending"
    ASSIGNED = "assigned"
    RUNNING = "running"
    WAITING_INPUT = "waiting_input"  # a `tty: true` handler waits at its prompt (timers paused)
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunStatus(Status):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"  # a budget over it was exceeded (on_exceed: pause): until resumed or cancelled
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepStatus(Status):
    PENDING = "pending"
    WAITING = "waiting"  # an approval gate, waiting for an operator
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class AttemptReason(StrEnum):
    """Why an attempt ended (`reason` of an attempt; the agent reports the first five)."""

    COMPLETED = "completed"
    ERROR = "error"  # the handler failed (non-zero exit, exception)
    TIMEOUT = "timeout"  # ran longer than the task's `timeout`
    STALLED = "stalled"  # no output for `stall_timeout`
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the agent stopped while the handler ran
    CHECK_FAILED = "check_failed"  # `success_when` was false or could not be evaluated
    RESULT_TOO_LARGE = "result_too_large"  # over max_result_bytes
    RESULT_INVALID = "result_invalid"  # NaN, NUL, a lone surrogate or nesting over 64 levels
    AGENT_LOST = "agent_lost"  # the agent died or went silent
    LEASE_LOST = "lease_lost"  # the agent no longer runs it (reconciled after a reconnect)
    DAEMON_RESTART = "daemon_restart"  # hived restarted and nobody held the attempt
    THROTTLED = "throttled"  # the handler hit a provider's limit: back to the queue, not counted
    EXPIRED = "expired"  # the task was not started by its expires_at (it never had an attempt)
    BUDGET_EXCEEDED = "budget_exceeded"  # a budget over the attempt was exceeded: hived stopped it
    NODE_LOST = "node_lost"  # the node that ran it went silent for node_timeout (hived.nodes)


# Reasons that say something about the agent (they feed its circuit breaker); None: no reason given.
AGENT_FAULTS = frozenset({AttemptReason.ERROR, AttemptReason.TIMEOUT, AttemptReason.STALLED,
                          AttemptReason.CHECK_FAILED, None})

A = AgentStatus
N = NodeStatus
T = TaskStatus
R = RunStatus
S = StepStatus

TRANSITIONS: dict[type[Status], dict[Status, frozenset[Status]]] = {
    AgentStatus: {
        A.STARTING: frozenset({A.ACTIVE, A.STOPPED, A.FAILED, A.UNHEALTHY, A.STARTING, A.DRAINING}),
        A.ACTIVE: frozenset({A.BUSY, A.DRAINING, A.STOPPED, A.UNHEALTHY, A.LOST, A.STARTING, A.FAILED}),
        A.BUSY: frozenset({A.ACTIVE, A.DRAINING, A.STOPPED, A.UNHEALTHY, A.LOST, A.STARTING, A.FAILED}),
        A.DRAINING: frozenset({A.STOPPED, A.UNHEALTHY, A.LOST, A.STARTING, A.FAILED}),
        A.STOPPED: frozenset({A.STARTING, A.ACTIVE}),
        A.UNHEALTHY: frozenset({A.STARTING, A.STOPPED, A.FAILED, A.ACTIVE, A.BUSY, A.LOST}),
        A.FAILED: frozenset({A.STARTING, A.STOPPED}),
        A.LOST: frozenset({A.ACTIVE, A.STARTING, A.STOPPED}),
        A.UNSCHEDULED: frozenset({A.STARTING, A.STOPPED}),
    },
    NodeStatus: {
        N.ACTIVE: frozenset({N.DRAINING, N.LOST, N.STOPPED}),
        N.DRAINING: frozenset({N.ACTIVE, N.LOST, N.STOPPED}),
        N.LOST: frozenset({N.ACTIVE}),  # it came back (and dropped what was moved)
        N.STOPPED: frozenset({N.ACTIVE}),
    },
    TaskStatus: {
        T.SCHEDULED: frozenset({T.PENDING, T.CANCELLED, T.FAILED}),  # due; cancelled; expired
        T.PENDING: frozenset({T.ASSIGNED, T.CANCELLED, T.FAILED}),  # failed: expired unstarted
        T.ASSIGNED: frozenset({T.RUNNING, T.COMPLETED, T.FAILED, T.RETRYING, T.PENDING, T.CANCELLED}),
        T.RUNNING: frozenset({T.COMPLETED, T.FAILED, T.RETRYING, T.PENDING, T.CANCELLED, T.WAITING_INPUT}),
        T.WAITING_INPUT: frozenset({T.RUNNING, T.COMPLETED, T.FAILED, T.RETRYING, T.PENDING, T.CANCELLED}),
        T.RETRYING: frozenset({T.PENDING, T.ASSIGNED, T.CANCELLED}),
        T.COMPLETED: frozenset(),
        T.FAILED: frozenset({T.PENDING}),  # only by an explicit `task retry`
        T.CANCELLED: frozenset({T.PENDING}),  # only by an explicit `task retry`
    },
    RunStatus: {
        R.PENDING: frozenset({R.RUNNING, R.PAUSED, R.FAILED, R.CANCELLED}),
        R.RUNNING: frozenset({R.SUCCEEDED, R.FAILED, R.CANCELLED, R.PAUSED}),
        R.PAUSED: frozenset({R.RUNNING, R.FAILED, R.CANCELLED}),
        R.SUCCEEDED: frozenset(),
        R.FAILED: frozenset(),
        R.CANCELLED: frozenset(),
    },
    StepStatus: {
        # Back to pending: only when a rejected approval sends its steps back (`--rework`).
        S.PENDING: frozenset({S.RUNNING, S.WAITING, S.SUCCEEDED, S.FAILED, S.SKIPPED, S.CANCELLED}),
        S.WAITING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.PENDING}),
        S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.PENDING}),
        S.SUCCEEDED: frozenset({S.PENDING}),
        S.FAILED: frozenset({S.PENDING}),
        S.SKIPPED: frozenset({S.PENDING}),
        S.CANCELLED: frozenset(),
    },
}

FINAL: dict[type[Status], frozenset[Status]] = {
    AgentStatus: frozenset({A.STOPPED, A.FAILED}),
    NodeStatus: frozenset({N.STOPPED}),
    TaskStatus: frozenset({T.COMPLETED, T.FAILED, T.CANCELLED}),
    RunStatus: frozenset({R.SUCCEEDED, R.FAILED, R.CANCELLED}),
    StepStatus: frozenset({S.SUCCEEDED, S.FAILED, S.SKIPPED, S.CANCELLED}),
}

FINAL_TASK = FINAL[TaskStatus]
FINAL_RUN = FINAL[RunStatus]
FINAL_STEP = FINAL[StepStatus]
ROUTABLE_AGENT = frozenset({A.ACTIVE, A.BUSY})  # statuses in which an agent may be given work
# A task or step status -> the step status it means.
STEP_OF_TASK = {T.COMPLETED: S.SUCCEEDED, T.FAILED: S.FAILED, T.CANCELLED: S.CANCELLED}

St = TypeVar("St", bound=Status)


def transition(current: St, new: St) -> St:
    """`new`, if the state machine of `current`'s kind allows the move; else IllegalTransition.
    Staying in the same status is allowed for agents (a repeated report) and nothing else."""
    if new == current and isinstance(current, AgentStatus):
        return new
    if new not in TRANSITIONS[type(current)][current]:
        kind = type(current).__name__.removesuffix("Status").lower()
        raise IllegalTransition(f"{kind} cannot go from {current} to {new}")
    return new
