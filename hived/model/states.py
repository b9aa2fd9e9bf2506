"""Agent and task states, and the one table of legal transitions for each."""

from __future__ import annotations

from enum import StrEnum


class IllegalTransition(ValueError):
    pass


class AgentStatus(StrEnum):
    STARTING = "starting"
    ACTIVE = "active"
    BUSY = "busy"
    DRAINING = "draining"
    STOPPED = "stopped"
    UNHEALTHY = "unhealthy"
    FAILED = "failed"
    LOST = "lost"


class TaskStatus(StrEnum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


A = AgentStatus
AGENT_TRANSITIONS: dict[AgentStatus, frozenset[AgentStatus]] = {
    A.STARTING: frozenset({A.ACTIVE, A.STOPPED, A.FAILED, A.UNHEALTHY, A.STARTING, A.DRAINING}),
    A.ACTIVE: frozenset({A.BUSY, A.DRAINING, A.STOPPED, A.UNHEALTHY, A.LOST, A.STARTING, A.FAILED}),
    A.BUSY: frozenset({A.ACTIVE, A.DRAINING, A.STOPPED, A.UNHEALTHY, A.LOST, A.STARTING, A.FAILED}),
    A.DRAINING: frozenset({A.STOPPED, A.UNHEALTHY, A.LOST, A.STARTING, A.FAILED}),
    A.STOPPED: frozenset({A.STARTING, A.ACTIVE}),
    A.UNHEALTHY: frozenset({A.STARTING, A.STOPPED, A.FAILED, A.ACTIVE, A.BUSY, A.LOST}),
    A.FAILED: frozenset({A.STARTING, A.STOPPED}),
    A.LOST: frozenset({A.ACTIVE, A.STARTING, A.STOPPED}),
}

T = TaskStatus
TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    T.PENDING: frozenset({T.ASSIGNED, T.CANCELLED}),
    T.ASSIGNED: frozenset({T.RUNNING, T.COMPLETED, T.FAILED, T.RETRYING, T.PENDING, T.CANCELLED}),
    T.RUNNING: frozenset({T.COMPLETED, T.FAILED, T.RETRYING, T.PENDING, T.CANCELLED}),
    T.RETRYING: frozenset({T.PENDING, T.ASSIGNED, T.CANCELLED}),
    T.COMPLETED: frozenset(),
    T.FAILED: frozenset({T.PENDING}),  # only by an explicit `task retry`
    T.CANCELLED: frozenset({T.PENDING}),  # only by an explicit `task retry`
}

TERMINAL_TASK_STATES = frozenset({T.COMPLETED, T.FAILED, T.CANCELLED})
IN_FLIGHT_TASK_STATES = frozenset({T.ASSIGNED, T.RUNNING})
ROUTABLE_AGENT_STATES = frozenset({A.ACTIVE, A.BUSY})


def check_agent_transition(current: AgentStatus, new: AgentStatus) -> AgentStatus:
    if new != current and new not in AGENT_TRANSITIONS[current]:
        raise IllegalTransition(f"agent cannot go from {current} to {new}")
    return new


def check_task_transition(current: TaskStatus, new: TaskStatus) -> TaskStatus:
    if new not in TASK_TRANSITIONS[current]:
        raise IllegalTransition(f"task cannot go from {current} to {new}")
    return new
