"""hivectl's key/value views as plain text, without rich: `hivectl status` piped (scripts, `watch`,
the benchmark) prints them without importing rich. `key_values` gives exactly what rich prints for the
same rows, and gives None where it could not promise that (then render.py's table is printed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

AGENT_ORDER = [
    "starting",
    "active",
    "busy",
    "draining",
    "unhealthy",
    "failed",
    "lost",
    "unscheduled",  # placed on a node that is not known: nobody runs it
    "stopped",
]
TASK_ORDER = [
    "scheduled",
    "pending",
    "assigned",
    "running",
    "waiting_input",
    "retrying",
    "completed",
    "failed",
    "cancelled",
]
RUN_ORDER = ["pending", "running", "succeeded", "failed", "cancelled"]
SIMPLE_WIDTH = 200  # cells: far below the piped console's 1000, so rich never folds such a value


def counts(by_status: Mapping[str, int], order: Sequence[str]) -> str:
    """`active 2, busy 1` in lifecycle order (unknown states last, alphabetically)."""
    rank = {name: i for i, name in enumerate(order)}
    keys = sorted(by_status, key=lambda k: (rank.get(k, len(order)), k))
    return ", ".join(f"{key} {by_status[key]}" for key in keys if by_status[key]) or "none"


def status_rows(status: Mapping[str, Any], health: str | None = None) -> list[tuple[str, str]]:
    """The rows of `hivectl status`, from the JSON object of `GET /status`."""
    rows = [("health", health)] if health else []
    return rows + [
        ("version", str(status["version"])),
        ("database", str(status["database"])),
        ("agents", counts(status["agents"], AGENT_ORDER)),
        ("tasks", counts(status["tasks"], TASK_ORDER)),
        ("queue depth", str(status["queue_depth"])),
        ("runs", counts(status.get("runs", {}), RUN_ORDER)),
    ] + held_rows(status)


def describe_pause(pause: Mapping[str, Any]) -> str:
    """`type build, requires gpu` (hived's own words for it: hived/tasks/holds.py `Pause.describe`)."""
    parts = [f"type {pause['type']}"] if pause.get("type") else []
    parts += [f"requires {cap}" for cap in pause.get("requires") or []]
    parts += [f"workflow {pause['workflow']}"] if pause.get("workflow") else []
    return ", ".join(parts) or "all tasks"


def held_rows(status: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The pauses and cordons in force, when there are any (`hivectl status`, `hivectl queue`)."""
    rows = []
    if paused := status.get("paused"):
        rows.append(("paused", "; ".join(describe_pause(p) for p in paused)))
    if cordoned := status.get("cordoned"):
        rows.append(("cordoned", ", ".join(cordoned)))
    return rows


def _simple(cell: str) -> bool:
    """One line of printable ASCII (one cell per character), short enough never to be folded."""
    return cell.isascii() and cell.isprintable() and len(cell) <= SIMPLE_WIDTH


def key_values(rows: Sequence[tuple[str, str]]) -> str | None:
    """The rows as render.details_table prints them to a pipe (keys padded, two spaces, the value),
    or None when a cell is not simple enough to be sure of that."""
    if not rows or not all(_simple(key) and _simple(value) for key, value in rows):
        return None
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}".rstrip() for key, value in rows)
