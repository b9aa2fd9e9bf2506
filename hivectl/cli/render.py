"""All output of hivectl: rich tables for people, JSON and YAML (the API objects) for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table


class Output(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


STATUS_COLOURS = {
    "active": "green",
    "busy": "cyan",
    "starting": "yellow",
    "draining": "yellow",
    "stopped": "dim",
    "unhealthy": "red",
    "failed": "bold red",
    "lost": "red",
    "pending": "yellow",
    "assigned": "cyan",
    "running": "cyan",
    "retrying": "magenta",
    "completed": "green",
    "cancelled": "dim",
}


def console() -> Console:
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def age(value: str | None, now: datetime | None = None) -> str:
    """A compact age like kubectl's: 5s, 3m, 2h, 4d."""
    if not value:
        return "-"
    then = datetime.fromisoformat(value.replace("Z", "+00:00"))
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def coloured(status: str) -> str:
    colour = STATUS_COLOURS.get(status)
    return f"[{colour}]{status}[/]" if colour else status


def dump(data: Any, output: Output) -> None:
    if output is Output.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())


def table(rows: Sequence[dict[str, Any]], columns: list[tuple[str, Callable[[dict[str, Any]], str]]]) -> None:
    grid = Table(box=None, pad_edge=False, header_style="bold")
    for title, _ in columns:
        grid.add_column(title, no_wrap=True)
    for row in rows:
        grid.add_row(*(fn(row) for _, fn in columns))
    console().print(grid)


def agents(items: list[dict[str, Any]], output: Output) -> None:
    if output is not Output.table:
        return dump(items, output)
    table(
        items,
        [
            ("NAME", lambda a: a["name"]),
            ("TYPE", lambda a: a["type"]),
            ("STATUS", lambda a: coloured(a["status"])),
            ("CAPABILITIES", lambda a: ",".join(a["capabilities"]) or "-"),
            ("TASKS", lambda a: f"{len(a['current_tasks'])}/{a['max_concurrency']}"),
            ("DONE", lambda a: str(a["tasks_done"])),
            ("FAILED", lambda a: str(a["tasks_failed"])),
            ("RESTARTS", lambda a: str(a["restarts"])),
            ("PID", lambda a: str(a["pid"] or "-")),
            ("HEARTBEAT", lambda a: age(a["last_heartbeat"])),
            ("AGE", lambda a: age(a["created_at"])),
        ],
    )


def tasks(items: list[dict[str, Any]], output: Output, agent_names: dict[str, str]) -> None:
    if output is not Output.table:
        return dump(items, output)
    table(
        items,
        [
            ("ID", lambda t: t["id"][:8]),
            ("TYPE", lambda t: t["type"]),
            ("STATUS", lambda t: coloured(t["status"])),
            ("PRIORITY", lambda t: str(t["priority"])),
            ("AGENT", lambda t: agent_names.get(t["agent_id"] or "", (t["agent_id"] or "-")[:8])),
            ("ATTEMPTS", lambda t: f"{t['attempts']}/{t['max_attempts']}"),
            ("AGE", lambda t: age(t["created_at"])),
        ],
    )


def details(obj: dict[str, Any], output: Output, skip: Sequence[str] = ()) -> None:
    if output is not Output.table:
        return dump(obj, output)
    grid = Table(box=None, show_header=False, pad_edge=False)
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in obj.items():
        if key in skip:
            continue
        if key == "status":
            value = coloured(str(value))
        elif isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        grid.add_row(key, "-" if value is None else str(value))
    console().print(grid)


def agent_detail(agent: dict[str, Any], output: Output) -> None:
    details(agent, output, skip=("incarnations",))
    if output is Output.table and agent.get("incarnations"):
        print()
        table(
            agent["incarnations"],
            [
                ("INCARNATION", lambda i: str(i["number"])),
                ("PID", lambda i: str(i["pid"] or "-")),
                ("STARTED", lambda i: age(i["started_at"]) + " ago"),
                ("ENDED", lambda i: age(i["ended_at"]) + " ago" if i["ended_at"] else "running"),
                (
                    "EXIT",
                    lambda i: (
                        f"signal {i['signal']}"
                        if i["signal"]
                        else str(i["exit_code"] if i["exit_code"] is not None else "-")
                    ),
                ),
                ("REASON", lambda i: i["reason"] or "-"),
            ],
        )


def task_detail(task: dict[str, Any], output: Output) -> None:
    details(task, output, skip=("attempt_history",))
    if output is Output.table and task.get("attempt_history"):
        print()
        table(
            task["attempt_history"],
            [
                ("ATTEMPT", lambda a: str(a["number"])),
                ("AGENT", lambda a: (a["agent_id"] or "-")[:8]),
                ("STARTED", lambda a: age(a["started_at"]) + " ago"),
                ("OUTCOME", lambda a: a["outcome"] or "running"),
                ("REASON", lambda a: a["reason"] or "-"),
                ("ERROR", lambda a: (a["error"] or "-")[:80]),
            ],
        )
