"""The dashboard's model: snapshots and events in, dirty rows out (pure)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tui import views
from tui.state import Fleet


def agent(**fields: object) -> dict[str, object]:
    return {
        "id": "a1",
        "name": "rev-1",
        "type": "rev",
        "status": "active",
        "current_tasks": [],
        "tasks_done": 3,
        "tasks_failed": 1,
        "rss_bytes": 30 * 2**20,
        "cpu_percent": 2.4,
        "restarts": 2,
        "last_heartbeat": None,
    } | fields


def test_agent_snapshot_and_status_event_mark_rows_dirty() -> None:
    fleet = Fleet()
    fleet.load_agents([agent(), agent(id="a2", name="rev-2")])
    assert fleet.take_dirty().agents == {"a1", "a2"}
    fleet.load_agents([agent(), agent(id="a2", name="rev-2")])
    assert not fleet.take_dirty()  # nothing changed, nothing to draw
    fleet.apply(
        {"id": 5, "kind": "agent.status", "agent_id": "a1", "status": "unhealthy", "reason": "missed"}
    )
    assert fleet.agents["a1"]["status"] == "unhealthy"
    assert fleet.take_dirty().agents == {"a1"}
    fleet.apply({"id": 5, "kind": "agent.status", "agent_id": "a1", "status": "active"})  # seen: ignored
    assert fleet.agents["a1"]["status"] == "unhealthy"
    fleet.load_agents([agent()])
    assert fleet.take_dirty().removed_agents == {"a2"}


def test_task_events_keep_counts_and_the_recent_list() -> None:
    fleet = Fleet()
    fleet.load_status({"tasks": {"completed": 4}, "queue_depth": 0})
    fleet.apply({"id": 1, "kind": "task.submitted", "task_id": "t1", "type": "review", "priority": 7})
    assert fleet.tasks["t1"]["status"] == "pending" and fleet.queue_depth == 1
    fleet.apply(
        {"id": 2, "kind": "task.retrying", "task_id": "t1", "agent_id": "a1", "attempt": 1, "error": "x"}
    )
    assert fleet.tasks["t1"]["status"] == "retrying" and fleet.tasks["t1"]["attempts"] == 1
    fleet.apply({"id": 3, "kind": "task.completed", "task_id": "t1", "agent_id": "a1"})
    assert fleet.task_counts["completed"] == 5 and fleet.ended_since_sample == 1
    fleet.sample()
    assert list(fleet.done_history) == [1.0] and fleet.ended_since_sample == 0


def test_run_and_step_events() -> None:
    fleet = Fleet()
    run = {
        "id": "r1",
        "workflow": "ship",
        "status": "running",
        "steps": [
            {"id": "a", "status": "running", "needs": []},
            {"id": "b", "status": "pending", "needs": ["a"]},
        ],
    }
    fleet.load_runs([run])
    fleet.take_dirty()
    fleet.apply(
        {"id": 1, "kind": "step.succeeded", "run_id": "r1", "step_id": "a", "task_id": "t", "agent_id": "x"}
    )
    fleet.apply({"id": 2, "kind": "step.waiting", "run_id": "r1", "step_id": "b"})
    fleet.apply({"id": 3, "kind": "run.running", "run_id": "r2", "workflow": "other", "status": "running"})
    assert [s["status"] for s in fleet.runs["r1"]["steps"]] == ["succeeded", "waiting"]
    assert fleet.take_dirty().runs == {"r1", "r2"}
    row = views.run_row(fleet.runs["r1"], views.now_utc())
    assert row[3].endswith(" 1/2") and str(row[4]) == "✔⏸"


def test_rows() -> None:
    now = views.now_utc()
    row = views.agent_row(
        agent(current_tasks=["0123456789", "x"], last_heartbeat=now - timedelta(seconds=7)), now
    )
    assert [str(c) for c in row] == [
        "rev-1",
        "rev",
        "active",
        "7s",
        "01234567 +1",
        "3",
        "1",
        "30M",
        "2%",
        "2",
    ]
    task = {
        "id": "abcdef0123",
        "type": "t",
        "status": "failed",
        "priority": 9,
        "agent_id": "a1",
        "attempts": 3,
        "error": "boom\ntrace",
    }
    assert [str(c) for c in views.task_row(task, {"a1": "rev-1"})] == [
        "abcdef01",
        "t",
        "failed",
        "9",
        "rev-1",
        "3",
        "",
        "boom",
    ]
    assert views.progress_bar(1, 4, width=8) == "██░░░░░░"
    assert "p9: 2  p5: 1" in str(views.depth_text({}, 3, {"5": 1, "9": 2}))


def limit(**fields: object) -> dict[str, object]:
    return {
        "name": "anthropic",
        "rate": "50/min",
        "burst": 50,
        "concurrency": None,
        "strategy": "queue",
        "tokens": 12.5,
        "holders": 0,
        "waiting": 3,
        "closed_until": None,
        "keys": [],
    } | fields


def test_limits_snapshot_marks_changed_and_removed_rows() -> None:
    fleet = Fleet()
    fleet.load_limits(
        [limit(), limit(name="repo-writers", rate=None, burst=None, tokens=None, concurrency=1)]
    )
    assert fleet.take_dirty().limits == {"anthropic", "repo-writers"}
    fleet.load_limits(
        [limit(), limit(name="repo-writers", rate=None, burst=None, tokens=None, concurrency=1)]
    )
    assert not fleet.take_dirty()
    fleet.load_limits([limit(tokens=11.0)])
    dirty = fleet.take_dirty()
    assert dirty.limits == {"anthropic"} and dirty.removed_limits == {"repo-writers"}


def test_limit_rows() -> None:
    now = views.now_utc()
    assert [str(c) for c in views.limit_row(limit(), now)] == [
        "anthropic",
        "50/min",
        "12.5/50",
        "-",
        "0",
        "3",
        "-",
    ]
    closed = limit(tokens=0.0, closed_until=(now + timedelta(seconds=42)).isoformat())
    row = [str(c) for c in views.limit_row(closed, now)]
    assert row[2] == "0/50" and row[6] == "for 42s"
    past = limit(closed_until=(now - timedelta(seconds=1)).isoformat())  # reopened: not shown closed
    assert str(views.limit_row(past, now)[6]) == "-"
    writers = limit(name="w", rate=None, burst=None, tokens=None, concurrency=2, holders=2, waiting=0)
    assert [str(c) for c in views.limit_row(writers, now)][1:6] == ["-", "-", "2", "2", "0"]


def test_waiting_reasons_scheduled_tasks_pauses_and_cordons() -> None:
    fleet = Fleet()
    fleet.apply({"id": 1, "kind": "task.submitted", "task_id": "t1", "type": "review", "priority": 5})
    fleet.apply({"id": 2, "kind": "task.submitted", "task_id": "t2", "type": "review", "priority": 5})
    fleet.take_dirty()
    queued = [  # newest first, as the API lists them
        {"id": "t2", "status": "scheduled", "not_before": "2026-05-01T09:30:00Z", "waiting_reason": None},
        {"id": "t1", "status": "pending", "waiting_reason": "limit anthropic"},
    ]
    fleet.load_queued(queued)
    assert fleet.take_dirty().tasks == {"t1", "t2"}
    assert list(fleet.tasks) == ["t1", "t2"]  # the order stays
    assert views.waiting(fleet.tasks["t1"]) == "limit anthropic"
    assert views.waiting(fleet.tasks["t2"]) == "until 2026-05-01 09:30:00Z"
    assert str(views.task_row(fleet.tasks["t2"], {})[2]) == "scheduled"
    fleet.load_queued(queued)
    assert not fleet.take_dirty().tasks  # nothing changed
    fleet.apply({"id": 3, "kind": "task.completed", "task_id": "t1", "agent_id": "a1"})
    assert views.waiting(fleet.tasks["t1"]) == ""  # it no longer waits
    fleet.load_status({"tasks": {}, "queue_depth": 0, "paused": [{"type": None, "requires": []}]})
    assert "paused: all tasks" in str(views.depth_text({}, 0, {}, fleet.paused))
    assert "not paused" in str(views.depth_text({}, 0, {}, []))
    row = views.agent_row(agent(cordoned=True), views.now_utc())
    assert str(row[2]) == "active,cordoned"


def node(**fields: object) -> dict[str, object]:
    return {
        "name": "alpha",
        "status": "active",
        "slot": 0,
        "host": "box-1",
        "pid": 4242,
        "address": "10.0.0.1:8700",
        "heartbeat_at": None,
        "agents": ["rev-1", "rev-2"],
        "this": False,
    } | fields


def test_nodes_snapshot_marks_changed_and_removed_rows() -> None:
    fleet = Fleet()
    fleet.load_nodes([node(), node(name="beta")])
    assert fleet.take_dirty().nodes == {"alpha", "beta"}
    fleet.load_nodes([node(), node(name="beta")])
    assert not fleet.take_dirty()
    fleet.load_nodes([node(status="lost")])
    dirty = fleet.take_dirty()
    assert dirty.nodes == {"alpha"} and dirty.removed_nodes == {"beta"}
    assert fleet.nodes["alpha"]["status"] == "lost" and "beta" not in fleet.nodes


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, ["alpha", "active", "box-1", "4242", "10.0.0.1:8700", "rev-1,rev-2", "-"]),
        (
            {"this": True, "beat": 75},
            ["alpha (this)", "active", "box-1", "4242", "10.0.0.1:8700", "rev-1,rev-2", "1m"],
        ),
        (
            {"status": "draining", "agents": ["a", "b", "c"], "beat": 3},
            ["alpha", "draining", "box-1", "4242", "10.0.0.1:8700", "a,b,c", "3s"],
        ),
        (
            {"status": "lost", "host": None, "pid": None, "address": None, "agents": []},
            ["alpha", "lost", "-", "-", "-", "-", "-"],
        ),
        (
            {"agents": ["a", "b", "c", "d"]},
            ["alpha", "active", "box-1", "4242", "10.0.0.1:8700", "4 agents", "-"],
        ),
    ],
)
def test_node_rows(fields: dict[str, object], expected: list[str]) -> None:
    now = views.now_utc()
    if "beat" in fields:  # seconds ago
        beat = fields.pop("beat")
        fields["heartbeat_at"] = (now - timedelta(seconds=float(beat))).isoformat()  # type: ignore[arg-type]
    assert [str(c) for c in views.node_row(node(**fields), now)] == expected


def test_nodes_summary_counts_agents_in_lifecycle_order_and_names_the_unscheduled() -> None:
    agents = [
        agent(status="unscheduled", name="nowhere", node="gamma"),
        agent(status="stopped", name="old"),
        agent(status="active"),
        agent(status="active", name="rev-2"),
    ]
    text = views.nodes_summary(agents).plain.splitlines()
    assert text == [
        "agents: active 2, unscheduled 1, stopped 1",
        "unscheduled (placed on no known node): nowhere @gamma",
    ]
    assert views.nodes_summary([agent()]).plain == "agents: active 1"  # no second line
    assert views.agent_row(agent(status="unscheduled"), views.now_utc())[2].style == "bold magenta"
