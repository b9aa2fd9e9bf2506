"""All output of hivectl: rich tables for people, JSON and YAML (the API objects) for scripts.

Table builders are pure (models in, a `rich` renderable out, the clock passed in) so they can be
tested; `emit` and friends write to stdout. Values that come from users (names, errors, reasons)
are always wrapped in `Text`, so that brackets in them are never read as markup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

# Output and the writers live in output.py (commands that print no table need not import rich); the
# commands and the tests find them here too.
from hivectl.cli.output import Output, console, emit, log_chunk, serialize, to_data  # noqa: F401
from hivectl.cli.plain import AGENT_ORDER, RUN_ORDER, TASK_ORDER, counts, status_rows  # noqa: F401

if TYPE_CHECKING:
    from pydantic import BaseModel

    from hivectl.client import Applied
    from hived.model.schemas import Agent, AgentDetail, Attempt, Incarnation, Status, Task


STATUS_STYLES = {
    "active": "green",
    "busy": "cyan",
    "starting": "yellow",
    "draining": "yellow",
    "stopped": "dim",
    "unhealthy": "red",
    "failed": "bold red",
    "lost": "red",
    "unscheduled": "bold magenta",  # an agent placed on a node that is not known
    "pending": "yellow",
    "assigned": "cyan",
    "running": "cyan",
    "retrying": "magenta",
    "waiting_input": "bold yellow",  # an interactive task at its prompt: `hivectl task send|attach`
    "completed": "green",
    "cancelled": "dim",
    "ok": "green",
    "succeeded": "green",
    "waiting": "bold yellow",
    "paused": "bold yellow",  # a run whose budget was exceeded (on_exceed: pause)
    "skipped": "dim",
}


# --- values ---------------------------------------------------------------------------------------


def now_utc() -> datetime:
    return datetime.now(UTC)


def age(when: datetime | None, now: datetime | None = None) -> str:
    """A compact age in kubectl's manner: 5s, 3m, 2h, 4d; `-` for never."""
    if when is None:
        return "-"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = max(0, int(((now or now_utc()) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


# --- tables ---------------------------------------------------------------------------------------


def grid(headers: Sequence[str]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for header in headers:
        table.add_column(header, no_wrap=True, overflow="fold")
    return table


def agents_table(agents: Sequence[Agent], now: datetime | None = None) -> Table:
    headers = ["NAME", "TYPE", "STATUS", "CAPABILITIES", "TASKS", "DONE", "FAILED", "RESTARTS", "PID"]
    table = grid([*headers, "HEARTBEAT", "AGE"])
    for agent in agents:
        table.add_row(
            Text(agent.name),
            Text(agent.type),
            Text.assemble(status_text(agent.status), ",cordoned" if agent.cordoned else ""),
            Text(",".join(agent.capabilities) or "-"),
            f"{len(agent.current_tasks)}/{agent.max_concurrency}",
            str(agent.tasks_done),
            str(agent.tasks_failed),
            str(agent.restarts),
            str(agent.pid) if agent.pid else "-",
            age(agent.last_heartbeat, now),
            age(agent.created_at, now),
        )
    return table


def agent_name(agent_id: str | None, names: Mapping[str, str]) -> str:
    if not agent_id:
        return "-"
    return names.get(agent_id, agent_id[:8])


def tasks_table(tasks: Sequence[Task], names: Mapping[str, str], now: datetime | None = None) -> Table:
    table = grid(["ID", "TYPE", "STATUS", "PRIORITY", "AGENT", "ATTEMPTS", "AGE"])
    for task in tasks:
        table.add_row(
            task.id[:8],
            Text(task.type),
            status_text(task.status),
            str(task.priority),
            Text(agent_name(task.agent_id, names)),
            f"{task.attempts}/{task.max_attempts}",
            age(task.created_at, now),
        )
    return table


def _value(key: str, value: Any, now: datetime | None) -> RenderableType:
    if value is None or value == [] or value == {}:
        return Text("-")
    if key == "status":
        return status_text(str(value))
    if key in ("usage", "usage_today", "budget"):  # dollars and tokens, as `hivectl usage` shows them
        from hivectl.cli.spend import budget_text, usage_text

        return Text(budget_text(to_data(value)) if key == "budget" else usage_text(to_data(value)))
    if isinstance(value, datetime):
        return Text(f"{value.isoformat()} ({age(value, now)} ago)")
    if isinstance(value, dict | list):
        return Text(json.dumps(to_data(value), separators=(", ", ": ")))
    return Text(str(value))


def details_table(
    obj: BaseModel | Mapping[str, Any], now: datetime | None = None, skip: Sequence[str] = ()
) -> Table:
    """A key/value view of one object (its fields in the API's order)."""
    items = dict(obj)  # a model iterates as (field, value) pairs
    table = Table(box=None, show_header=False, pad_edge=False, show_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in items.items():
        if key not in skip:
            table.add_row(key, _value(key, value, now))
    return table


def incarnations_table(incarnations: Sequence[Incarnation], now: datetime | None = None) -> Table:
    table = grid(["INCARNATION", "PID", "HOST", "STARTED", "ENDED", "EXIT", "REASON"])
    for inc in incarnations:
        if inc.signal:
            exit_text = f"signal {inc.signal}"
        else:
            exit_text = "-" if inc.exit_code is None else str(inc.exit_code)
        table.add_row(
            str(inc.number),
            str(inc.pid) if inc.pid else "-",
            Text(inc.hostname or "-"),
            f"{age(inc.started_at, now)} ago",
            f"{age(inc.ended_at, now)} ago" if inc.ended_at else "running",
            exit_text,
            Text(inc.reason or "-"),
        )
    return table


def attempts_table(
    attempts: Sequence[Attempt], names: Mapping[str, str], now: datetime | None = None
) -> Table:
    from hivectl.cli.spend import cost

    spent = any(a.usage and a.usage.reports for a in attempts)  # a COST column for tasks that report
    table = grid(
        ["ATTEMPT", "AGENT", "STARTED", "DURATION", "OUTCOME", "REASON", *(["COST"] * spent), "ERROR"]
    )
    for attempt in attempts:
        if attempt.ended_at is not None:
            duration = f"{(attempt.ended_at - attempt.started_at).total_seconds():.1f}s"
        else:
            duration = "-"
        error = attempt.error or "-"
        table.add_row(
            str(attempt.number),
            Text(agent_name(attempt.agent_id, names)),
            f"{age(attempt.started_at, now)} ago",
            duration,
            status_text(attempt.outcome or "running"),
            Text(attempt.reason or "-"),
            *([cost(attempt.usage.cost_usd) if attempt.usage and attempt.usage.reports else "-"] * spent),
            Text(error if len(error) <= 100 else error[:99] + "…"),
        )
    return table


def agent_view(agent: AgentDetail, now: datetime | None = None) -> RenderableType:
    parts: list[RenderableType] = [details_table(agent, now, skip=("incarnations",))]
    if agent.incarnations:
        parts += [Text(""), incarnations_table(agent.incarnations, now)]
    return Group(*parts)


def task_view(task: Task, names: Mapping[str, str], now: datetime | None = None) -> RenderableType:
    from hived.model.tasks import TaskDetail  # loaded already: `task` is one of its models

    parts: list[RenderableType] = [details_table(task, now, skip=("attempt_history",))]
    if isinstance(task, TaskDetail) and task.attempt_history:
        parts += [Text(""), attempts_table(task.attempt_history, names, now)]
    return Group(*parts)


def status_view(status: Status | Mapping[str, Any], health: str | None = None) -> Table:
    """`GET /status` as the model or as its JSON object (`hivectl status` reads it so: no pydantic)."""
    data = status if isinstance(status, Mapping) else status.model_dump()
    table = details_table({})
    for key, value in status_rows(data, health):
        table.add_row(key, status_text(value) if key == "health" else Text(value))
    return table


def applied_line(applied: Applied) -> str:
    return f"agent/{applied.agent.name} {applied.action}"
