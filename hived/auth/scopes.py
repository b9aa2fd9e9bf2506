"""Who may do what over TCP: the scope of a token against the route family of a request. Pure.

- read:     every GET (lists, details, logs, events, metrics), nothing that changes anything
- operator: read, plus the day-to-day actions: submit/cancel/retry tasks, run/cancel/approve
            workflows and apply templates, restart/drain/remove agents
- admin:    everything, including defining agents (their env and handler commands run programs)
            and managing tokens
- agent:    the agent protocol for its own agent only (register, heartbeat, work, complete, fail),
            and the context of the runs its tasks belong to
"""

from __future__ import annotations

import re
from enum import StrEnum


class Scope(StrEnum):
    READ = "read"
    OPERATOR = "operator"
    ADMIN = "admin"
    AGENT = "agent"


# (method, path pattern) -> the least scope that may; first match wins. Agent-protocol routes are
# the agent's (an admin may use them too).
RULES: list[tuple[str, re.Pattern[str], Scope]] = [
    (m, re.compile(p), s)
    for m, p, s in [
        ("*", r"^/tokens(/.*)?$", Scope.ADMIN),
        ("POST", r"^/agents/register$", Scope.AGENT),
        ("POST", r"^/agents/[^/]+/(heartbeat|work)$", Scope.AGENT),
        ("POST", r"^/tasks/[^/]+/(complete|fail)$", Scope.AGENT),
        ("GET", r"^/runs/[^/]+/context(/[^/]+)?$", Scope.AGENT),
        ("PUT", r"^/runs/[^/]+/context/[^/]+$", Scope.AGENT),
        ("POST", r"^/agents$", Scope.ADMIN),
        ("PUT", r"^/agents/[^/]+$", Scope.ADMIN),
        ("POST", r"^/agents/[^/]+/restart$", Scope.OPERATOR),
        ("DELETE", r"^/agents/[^/]+$", Scope.OPERATOR),
        ("POST", r"^/tasks(/batch)?$", Scope.OPERATOR),
        ("PUT", r"^/tasks/[^/]+/cancel$", Scope.OPERATOR),
        ("POST", r"^/tasks/[^/]+/retry$", Scope.OPERATOR),
        ("POST", r"^/workflows(/[^/]+/execute)?$", Scope.OPERATOR),
        ("POST", r"^/runs/[^/]+/(cancel|steps/[^/]+/(approve|reject))$", Scope.OPERATOR),
        ("GET", r"^/.*$", Scope.READ),
    ]
]
RANK = {Scope.READ: 1, Scope.OPERATOR: 2, Scope.ADMIN: 3}


def required(method: str, path: str) -> Scope | None:
    """The least scope a request needs; None: no token may (an unknown route or method)."""
    for rule_method, pattern, scope in RULES:
        if (rule_method in ("*", method)) and pattern.match(path):
            return scope
    return None


def allows(held: Scope, method: str, path: str) -> bool:
    need = required(method, path)
    if need is None:
        return held == Scope.ADMIN  # unknown routes: 404/405 for admins, 403 for everyone else
    if need == Scope.AGENT:
        return held in (Scope.AGENT, Scope.ADMIN)
    if held == Scope.AGENT:
        return False
    return RANK[held] >= RANK[need]


AGENT_PATH = re.compile(r"^/agents/([^/]+)/(heartbeat|work)$")
TASK_PATH = re.compile(r"^/tasks/([^/]+)/(complete|fail)$")
