"""Snapshots of the six panes, drawn from fixed data (no daemon: the connection line is left out).
A deliberate change of the layout: `HIVE_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_snapshots.py`,
then review the diff of tests/tui/snapshots/."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hivectl.client import AsyncClient
from hivectl.endpoint import Endpoint
from tests.tui.test_app import screen_text
from tui.app import HiveApp

SNAPSHOTS = Path(__file__).parent / "snapshots"
AGENTS = [
    {
        "id": f"a{i}",
        "name": f"reviewer-{i}",
        "type": "reviewer",
        "status": status,
        "current_tasks": tasks,
        "tasks_done": 10 * i,
        "tasks_failed": i,
        "rss_bytes": (20 + i) * 2**20,
        "cpu_percent": 1.5 * i,
        "restarts": i - 1,
        "last_heartbeat": None,
        "cordoned": i == 1,
    }
    for i, status, tasks in ((1, "active", []), (2, "busy", ["7f3a9c1e-aaaa"]), (3, "unhealthy", []))
] + [  # placed on a node that is not known
    {
        "id": "a4",
        "name": "builder",
        "type": "builder",
        "status": "unscheduled",
        "node": "gamma",
        "current_tasks": [],
        "tasks_done": 0,
        "tasks_failed": 0,
        "rss_bytes": None,
        "cpu_percent": None,
        "restarts": 0,
        "last_heartbeat": None,
    }
]
TASKS = [
    {
        "id": f"{i:08x}-0000",
        "type": "review",
        "status": status,
        "priority": p,
        "agent_id": agent,
        "attempts": n,
        "error": err,
        "waiting_reason": reason,
        "not_before": "2026-05-01T09:30:00Z" if status == "scheduled" else None,
    }
    for i, status, p, agent, n, err, reason in (
        (1, "completed", 5, "a1", 1, None, None),
        (2, "running", 9, "a2", 1, None, None),
        (3, "failed", 5, "a3", 3, "exit code 1: boom", None),
        (4, "pending", 2, None, 0, None, "limit repo-writers[hive]"),
        (5, "scheduled", 5, None, 0, None, None),
    )
]
LIMITS = [
    {
        "name": "anthropic",
        "rate": "50/min",
        "burst": 50,
        "concurrency": None,
        "strategy": "queue",
        "tokens": 0.0,
        "holders": 0,
        "waiting": 0,
        "closed_until": None,  # closed by a throttled report: set at the test's start (`for 2m`)
    },
    {
        "name": "repo-writers",
        "rate": None,
        "burst": None,
        "concurrency": 1,
        "strategy": "queue",
        "tokens": None,
        "holders": 1,
        "waiting": 1,
        "closed_until": None,
    },
]
RUNS = [
    {
        "id": "0000aaaa-run",
        "workflow": "code-review",
        "status": "running",
        "created_at": None,
        "steps": [
            {"id": s, "status": st, "needs": []}
            for s, st in (
                ("collect", "succeeded"),
                ("style", "succeeded"),
                ("security", "running"),
                ("verdict", "pending"),
            )
        ],
    },
    {
        "id": "0000bbbb-run",
        "workflow": "release",
        "status": "paused",
        "usage": {"cost_usd": 1.2, "input_tokens": 3000, "output_tokens": 3000, "tokens": 6000, "reports": 6},
        "budget": {"cost_usd": 1.0, "tokens": None, "on_exceed": "pause", "exceeded": True},
        "created_at": None,
        "steps": [
            {"id": "notes", "status": "succeeded", "needs": []},
            {"id": "go", "status": "waiting", "needs": []},
        ],
    },
]
NODES = [
    {
        "name": name,
        "status": status,
        "slot": slot,
        "host": host,
        "pid": pid,
        "address": address,
        "heartbeat_at": None,  # ages are the clock's: left out
        "agents": agents,
        "this": slot == 0,
    }
    for name, status, slot, host, pid, address, agents in (
        ("alpha", "active", 0, "box-1", 4242, "10.0.0.1:8700", ["reviewer-1", "reviewer-2"]),
        ("beta", "draining", 1, "box-2", 5151, "10.0.0.2:8700", ["reviewer-3"]),
        ("delta", "lost", 2, "box-3", 6161, None, []),
    )
]
EVENTS = [
    {
        "id": 1,
        "kind": "agent.status",
        "time": "2026-01-01T10:00:00Z",
        "agent": "reviewer-3",
        "status": "unhealthy",
    },
    {
        "id": 2,
        "kind": "task.failed",
        "time": "2026-01-01T10:00:01Z",
        "task_id": "00000003-0000",
        "error": "boom",
    },
    {
        "id": 3,
        "kind": "step.waiting",
        "time": "2026-01-01T10:00:02Z",
        "run_id": "0000bbbb-run",
        "step_id": "go",
    },
]


PANES = ["agents", "queue", "workflows", "events", "limits", "nodes"]


@pytest.mark.parametrize("pane", PANES)
async def test_pane_snapshot(tmp_path: Path, pane: str) -> None:
    app = HiveApp(AsyncClient(Endpoint(socket=tmp_path / "no-hived.sock")), refresh=3600, flush=3600)
    app.animation_level = "none"  # the tab underline would be caught mid-slide
    async with app.run_test(size=(120, 30)) as pilot:
        fleet = app.fleet
        fleet.load_agents(AGENTS)
        fleet.load_tasks(list(reversed(TASKS)))
        fleet.load_runs(RUNS)
        closed = (datetime.now(UTC) + timedelta(seconds=150)).isoformat()  # "for 2m" for 30 s
        fleet.load_limits([LIMITS[0] | {"closed_until": closed}, *LIMITS[1:]])
        fleet.load_nodes(NODES)
        fleet.load_status(
            {
                "tasks": {"completed": 1, "running": 1, "failed": 1, "pending": 1, "scheduled": 1},
                "queue_depth": 1,
                "queue_by_priority": {"2": 1},
                "paused": [{"type": "deploy", "requires": [], "workflow": None}],
            }
        )
        for depth, done in ((0, 0), (3, 1), (8, 4), (2, 9), (1, 3)):
            fleet.depth_history.append(depth)
            fleet.done_history.append(done)
        app.pending_events.extend(EVENTS)
        app.flush()
        await pilot.press(str(PANES.index(pane) + 1))
        await pilot.pause()
        text = "\n".join(
            line.rstrip() for line in screen_text(app).splitlines()[1:]
        )  # not the connection line
    path = SNAPSHOTS / f"{pane}.txt"
    if os.environ.get("HIVE_UPDATE_SNAPSHOTS"):
        path.write_text(text + "\n")
    assert text + "\n" == path.read_text(), f"the {pane} pane changed; see {path}"
