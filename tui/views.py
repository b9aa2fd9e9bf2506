"""Cells of the dashboard's tables, from the API's objects (dicts): pure, so they are unit-tested."""

from __future__ import annotations

import collections
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from hivectl.cli.plain import AGENT_ORDER, TASK_ORDER, counts, describe_pause
from hivectl.cli.render import STATUS_STYLES
from hivectl.cli.spend import cost

AGENT_COLUMNS = ("name", "type", "status", "heartbeat", "task", "done", "failed", "rss", "cpu", "restarts")
TASK_COLUMNS = ("id", "type", "status", "priority", "agent", "attempts", "waiting", "error")
RUN_COLUMNS = ("id", "workflow", "status", "progress", "steps", "cost", "age")
LIMIT_COLUMNS = ("name", "rate", "tokens", "concurrency", "holders", "waiting", "closed")
NODE_COLUMNS = ("name", "status", "host", "pid", "address", "agents", "heartbeat")
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


def status(value: str | None, cordoned: bool = False) -> Text:
    value = value or "-"
    text = Text(value, style=STATUS_STYLES.get(value, ""))
    if cordoned:  # as `hivectl agent list` says it
        text.append(",cordoned", style="bold yellow")
    return text


def size(rss: int | None) -> str:
    if rss is None:
        return "-"
    return f"{rss / 2**20:.0f}M" if rss < 10 * 2**30 else f"{rss / 2**30:.1f}G"


def agent_row(agent: dict[str, Any], now: datetime) -> tuple[Any, ...]:
    current = agent.get("current_tasks") or []
    cpu = agent.get("cpu_percent")
    node = agent.get("node")  # several hived on one PostgreSQL: the node that runs it
    return (
        Text(agent["name"] + (f" @{node}" if node else "")),
        Text(agent.get("type", "")),
        status(agent.get("status"), bool(agent.get("cordoned"))),
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
        Text(task["id"][:8], style="bold black on yellow" if task.get("status") == "waiting_input" else ""),
        Text(str(task.get("type") or "?")),
        status(task.get("status")),
        str(task.get("priority", "-")),
        Text(agent_names.get(agent_id, agent_id[:8]) if agent_id else "-"),
        str(task.get("attempts", 0)),
        Text(waiting(task), style="yellow"),
        Text(error[0][:60] if error else ""),
    )


def waiting(task: dict[str, Any]) -> str:
    """Why a queued task has not started: a limit or a pause (hived's `waiting_reason`), or when a
    scheduled one is due."""
    if task.get("status") == "scheduled":
        due = parse_time(task.get("not_before"))
        return f"until {due.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z" if due else "scheduled"
    if task.get("status") == "pending":
        return str(task.get("waiting_reason") or "")
    if task.get("status") == "waiting_input":
        return f"input: {task.get('prompt') or 'at its prompt'} (enter: attach)"
    return ""


def limit_row(limit: dict[str, Any], now: datetime) -> tuple[Any, ...]:
    """A limit: rate, tokens left of its bucket / burst, concurrency and units held, tasks waiting,
    and how much longer a throttled report keeps it closed."""
    tokens = limit.get("tokens")
    burst = limit.get("burst")
    closed = parse_time(limit.get("closed_until"))
    shut = closed is not None and closed > now
    return (
        Text(limit["name"]),
        limit.get("rate") or "-",
        f"{tokens:g}/{burst}" if tokens is not None else "-",
        str(limit["concurrency"]) if limit.get("concurrency") else "-",
        str(limit.get("holders", 0)),
        Text(str(limit.get("waiting", 0)), style="yellow" if limit.get("waiting") else ""),
        Text(f"for {age(now, closed)}", style="bold red") if shut and closed else "-",
    )


def node_agents(names: list[str]) -> str:
    """The agents placed on a node, as `hivectl node list` says them: up to three names, else a count."""
    return (",".join(names) if len(names) <= 3 else f"{len(names)} agents") or "-"


def node_row(node: dict[str, Any], now: datetime) -> tuple[Any, ...]:
    """A node (`GET /nodes`): its state (active, draining, lost, stopped), where it runs, the agents
    placed on it and how long ago it last beat (the node that answered is marked `(this)`)."""
    return (
        Text(node["name"] + (" (this)" if node.get("this") else "")),
        status(node.get("status")),
        Text(node.get("host") or "-"),
        str(node.get("pid") or "-"),
        Text(node.get("address") or "-"),
        Text(node_agents(node.get("agents") or [])),
        age(node.get("heartbeat_at"), now),
    )


def nodes_summary(agents: list[dict[str, Any]]) -> Text:
    """Above the nodes: the agents by status in lifecycle order, and the unscheduled ones by name
    with the node they are placed on (a node that is not known: no node lists them)."""
    by_status = collections.Counter(str(a.get("status") or "?") for a in agents)
    text = Text(f"agents: {counts(by_status, AGENT_ORDER)}")
    nowhere = [a for a in agents if a.get("status") == "unscheduled"]
    if nowhere:
        names = ", ".join(sorted(f"{a['name']} @{a.get('node') or '?'}" for a in nowhere))
        text.append(f"\nunscheduled (placed on no known node): {names}", style=STATUS_STYLES["unscheduled"])
    return text


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
        spend(run),
        age(run.get("created_at"), now),
    )


def spend(run: dict[str, Any]) -> Text:
    """What a run's steps spent (`$1.20`), and of what budget (`$1.20/$1.00`, red once exceeded)."""
    usage, budget = run.get("usage") or {}, run.get("budget") or {}
    if not usage.get("reports") and not budget:
        return Text("-")
    text = cost(usage.get("cost_usd", 0.0))
    if budget.get("cost_usd") is not None:
        text += f"/{cost(budget['cost_usd'])}"
    elif budget.get("tokens") is not None:
        text += f" {usage.get('tokens', 0)}/{budget['tokens']} tok"
    return Text(text, style="bold red" if budget.get("exceeded") else "")


def depth_text(
    counts: dict[str, int],
    depth: int,
    by_priority: dict[str, int],
    paused: list[dict[str, Any]] | None = None,
) -> Text:
    states = "  ".join(f"{s} {counts.get(s, 0)}" for s in TASK_ORDER)
    prio = "  ".join(f"p{p}: {n}" for p, n in sorted(by_priority.items(), key=lambda kv: -int(kv[0])) if n)
    text = Text(f"queue depth {depth}\n{states}\nready by priority: {prio or 'none'}\n")
    if paused:
        text.append("paused: " + "; ".join(describe_pause(p) for p in paused), style="bold yellow")
    else:
        text.append("not paused", style="dim")
    return text


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
