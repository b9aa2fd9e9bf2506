"""Cells of the dashboard's tables, from the API's objects (dicts): pure, so they are unit-tested."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from hivectl.cli.render import STATUS_STYLES

AGENT_COLUMNS = ("name", "type", "status", "heartbeat", "task", "done", "failed", "rss", "cpu", "restarts")
TASK_COLUMNS = ("id", "type", "status", "priority", "agent", "attempts", "error")
RUN_COLUMNS = ("id", "workflow", "status", "progress", "steps", "age")
STEP_ICONS = {
    "pending": "·",
    "waiting": "⏸",
    "running": "▶",
    "succeeded": "✔",
    "failed": "✘",
    "skipped": "↷",
    "cancelled": "■",
}


def parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def age(value: Any, now: datetime) -> str:
    when = parse_time(value)
    if when is None:
        return "-"
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def status(value: str | None) -> Text:
    value = value or "-"
    return Text(value, style=STATUS_STYLES.get(value, ""))


def size(rss: int | None) -> str:
    if rss is None:
        return "-"
    return f"{rss / 2**20:.0f}M" if rss < 10 * 2**30 else f"{rss / 2**30:.1f}G"


def agent_row(agent: dict[str, Any], now: datetime) -> tuple[Any, ...]:
    current = agent.get("current_tasks") or []
    cpu = agent.get("cpu_percent")
    return (
        Text(agent["name"]),
        Text(agent.get("type", "")),
        status(agent.get("status")),
        age(agent.get("last_heartbeat"), now),
        (current[0][:8] + (f" +{len(current) - 1}" if len(current) > 1 else "")) if current else "-",
        str(agent.get("tasks_done", 0)),
        str(agent.get("tasks_failed", 0)),
        size(agent.get("rss_bytes")),
        f"{cpu:.0f}%" if cpu is not None else "-",
        str(agent.get("restarts", 0)),
    )


def task_row(task: dict[str, Any], agent_names: dict[str, str]) -> tuple[Any, ...]:
    agent_id = task.get("agent_id")
    error = (task.get("error") or "").splitlines()
    return (
        task["id"][:8],
        Text(str(task.get("type") or "?")),
        status(task.get("status")),
        str(task.get("priority", "-")),
        Text(agent_names.get(agent_id, agent_id[:8]) if agent_id else "-"),
        str(task.get("attempts", 0)),
        Text(error[0][:60] if error else ""),
    )


def progress_bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / total) if total else width
    return "█" * filled + "░" * (width - filled)


def run_row(run: dict[str, Any], now: datetime) -> tuple[Any, ...]:
    steps = run.get("steps") or []
    done = sum(s.get("status") in ("succeeded", "failed", "skipped", "cancelled") for s in steps)
    icons = "".join(STEP_ICONS.get(s.get("status", ""), "?") for s in steps[:40])
    return (
        str(run["id"])[:8],
        Text(str(run.get("workflow", "?"))),
        status(run.get("status")),
        f"{progress_bar(done, len(steps))} {done}/{len(steps)}",
        Text(icons),
        age(run.get("created_at"), now),
    )


def depth_text(counts: dict[str, int], depth: int, by_priority: dict[str, int]) -> str:
    order = ["pending", "assigned", "running", "retrying", "completed", "failed", "cancelled"]
    states = "  ".join(f"{s} {counts.get(s, 0)}" for s in order)
    prio = "  ".join(f"p{p}: {n}" for p, n in sorted(by_priority.items(), key=lambda kv: -int(kv[0])) if n)
    return f"queue depth {depth}\n{states}\nready by priority: {prio or 'none'}"


def event_line(event: dict[str, Any]) -> Text:
    skip = {"id", "kind", "time"}
    when = str(event.get("time", ""))[11:19]
    rest = " ".join(f"{k}={v}" for k, v in event.items() if k not in skip and v is not None)
    kind = str(event.get("kind", ""))
    line = Text(f"{when} ")
    line.append(f"{kind:<16}", style=STATUS_STYLES.get(kind.partition(".")[2], "bold"))
    line.append(" " + rest)
    return line


def now_utc() -> datetime:
    return datetime.now(UTC)
