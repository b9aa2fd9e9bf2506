"""Who may do what over TCP: the scope of a token against the route family of a request. Pure.

- read:     every GET (lists, details, logs, events, metrics), nothing that changes anything
- operator: read, plus the day-to-day actions: submit/cancel/retry tasks, run/cancel/approve
            workflows and apply templates and limits, restart/drain/remove agents
- admin:    everything, including defining agents (their env and handler commands run programs)
            and managing tokens
- agent:    the agent protocol for its own agent only (register, heartbeat, work, complete, fail),
            and the context of the runs whose tasks it holds now (by full run id, HIVE_RUN_ID)
"""

from __future__ import annotations

import re
from enum import StrEnum


class Scope(StrEnum):
    READ = "read"
    OPERATOR = "operator"
    ADMIN = "admin"
    AGENT = "agent"


# (method, path pattern, the least scope, whether agent tokens may too); first match wins.
RULES: list[tuple[str, re.Pattern[str], Scope, bool]] = [
    (m, re.compile(p), s, a)
    for m, p, s, a in [
        ("*", r"^/tokens(/.*)?$", Scope.ADMIN, False),
        ("POST", r"^/agents/register$", Scope.ADMIN, True),
        ("POST", r"^/agents/[^/]+/(heartbeat|work|terminal|artifacts)$", Scope.ADMIN, True),
        ("POST", r"^/tasks/[^/]+/(complete|fail)$", Scope.ADMIN, True),
        ("GET", r"^/runs/[^/]+/context(/[^/]+)?$", Scope.READ, True),
        ("PUT", r"^/runs/[^/]+/context/[^/]+$", Scope.OPERATOR, True),
        ("POST", r"^/agents$", Scope.ADMIN, False),
        ("PUT", r"^/agents/[^/]+$", Scope.ADMIN, False),
        ("POST", r"^/agents/[^/]+/(restart|cordon|uncordon)$", Scope.OPERATOR, False),
        ("DELETE", r"^/agents/[^/]+$", Scope.OPERATOR, False),
        ("POST", r"^/tasks(/batch|/cancel|/retry|/pause|/resume)?$", Scope.OPERATOR, False),
        ("PUT", r"^/tasks/[^/]+/cancel$", Scope.OPERATOR, False),
        ("POST", r"^/tasks/[^/]+/(retry|input)$", Scope.OPERATOR, False),
        ("POST", r"^/workflows(/[^/]+/execute)?$", Scope.OPERATOR, False),
        ("PUT", r"^/limits/[^/]+$", Scope.OPERATOR, False),
        ("DELETE", r"^/limits/[^/]+$", Scope.OPERATOR, False),
        ("PUT", r"^/schedules/[^/]+$", Scope.OPERATOR, False),
        ("DELETE", r"^/schedules/[^/]+$", Scope.OPERATOR, False),
        ("POST", r"^/schedules/[^/]+/(pause|resume|trigger)$", Scope.OPERATOR, False),
        ("POST", r"^/runs/[^/]+/(cancel|resume|steps/[^/]+/(approve|reject))$", Scope.OPERATOR, False),
        ("POST", r"^/runs/[^/]+/signals/[^/]+$", Scope.OPERATOR, False),
        ("GET", r"^/.*$", Scope.READ, False),
    ]
]
RANK = {Scope.READ: 1, Scope.OPERATOR: 2, Scope.ADMIN: 3}


def required(method: str, path: str) -> tuple[Scope, bool] | None:
    """The least scope a request needs and whether agent tokens may; None: no token may (an
    unknown route or method)."""
    for rule_method, pattern, scope, agent_ok in RULES:
        if (rule_method in ("*", method)) and pattern.match(path):
            return scope, agent_ok
    return None


def allows(held: Scope, method: str, path: str) -> bool:
    need = required(method, path)
    if need is None:
        return held == Scope.ADMIN  # unknown routes: 404/405 for admins, 403 for everyone else
    scope, agent_ok = need
    if held == Scope.AGENT:
        return agent_ok
    return RANK[held] >= RANK[scope]


AGENT_PATH = re.compile(r"^/agents/([^/]+)/(heartbeat|work|terminal|artifacts)$")
TASK_PATH = re.compile(r"^/tasks/([^/]+)/(complete|fail)$")
RUN_CONTEXT_PATH = re.compile(r"^/runs/([^/]+)/context(/[^/]+)?$")
