"""The run and workflow tables of hivectl (pure: models in, text out)."""

from __future__ import annotations

from typing import Any

from hivectl.cli.workflow_render import progress, run_view, runs_table
from hived.model.runs import Run
from tests.unit.test_render import NOW, ago, text_of


def make_run(**fields: Any) -> Run:
    steps = [
        {
            "id": "build",
            "type": "b",
            "needs": [],
            "status": "succeeded",
            "task_id": "t1" * 4,
            "agent_id": "a1",
            "started_at": ago(30),
            "finished_at": ago(28),
        },
        {"id": "go", "type": "approval", "needs": ["build"], "status": "waiting", "started_at": ago(28)},
        {"id": "deploy", "type": "d", "needs": ["go"], "status": "pending"},
        {"id": "lint", "type": "l", "needs": [], "status": "failed", "error": "exit code 1: bad\nmore"},
    ]
    base: dict[str, Any] = {
        "id": "0123abcd-0000-0000-0000-000000000000",
        "workflow": "ship",
        "workflow_id": "w",
        "version": 3,
        "status": "running",
        "params": {"n": 3, "env": "prod", "dry": False},
        "steps": steps,
        "created_at": ago(31),
        "started_at": ago(30),
    }
    return Run.model_validate(base | fields)


def test_run_view_shows_steps_agents_durations_and_what_a_gate_waits_for() -> None:
    lines = text_of(run_view(make_run(), {"a1": "builder-1"}, NOW)).splitlines()
    assert any(line.split() == ["params", "n=3,", 'env="prod",', "dry=false"] for line in lines)
    rows = {
        line.split()[0]: line
        for line in lines
        if line and line.split()[0] in ("build", "go", "deploy", "lint")
    }
    assert rows["build"].split()[:5] == ["build", "b", "succeeded", "builder-1", "2.0s"]
    assert "waiting for: hivectl workflow approve|reject 0123abcd go" in rows["go"]
    assert rows["deploy"].split()[2:5] == ["pending", "-", "-"]
    assert rows["lint"].rstrip().endswith("exit code 1: bad")  # the first line of the error only


def test_runs_table_and_progress() -> None:
    run = make_run(status="succeeded", finished_at=ago(10))
    assert progress(run) == "2/4"
    line = text_of(runs_table([run], NOW)).splitlines()[1].split()
    assert line == ["0123abcd", "ship", "3", "succeeded", "2/4", "31s", "20.0s"]


def test_waiting_steps_say_what_ends_them() -> None:
    steps = [
        {"id": "nap", "type": "sleep", "needs": [], "status": "waiting", "waiting_until": NOW},
        {"id": "ci", "type": "signal", "needs": [], "status": "waiting", "signal": "ci-green"},
    ]
    lines = text_of(run_view(make_run(steps=steps), {}, NOW)).splitlines()
    rows = {line.split()[0]: line for line in lines if line and line.split()[0] in ("nap", "ci")}
    assert f"sleeping (until {NOW:%H:%M:%S} UTC)" in rows["nap"]
    assert "waiting for: hivectl workflow signal 0123abcd ci-green" in rows["ci"]


def test_run_view_shows_items_of_a_fan_out_and_a_child_run_under_its_step() -> None:
    child = make_run(id="c0ffee00-0000-0000-0000-000000000000", workflow="build-one", parent_run_id="p")
    steps = [
        {
            "id": "review",
            "type": "r",
            "needs": [],
            "status": "running",
            "items": {"total": 100, "ended": 40, "running": 5, "failed": 2},
        },
        {
            "id": "child",
            "type": "workflow:build-one",
            "needs": [],
            "status": "running",
            "child_run_id": child.id,
            "child": child.model_dump(),
        },
    ]
    lines = text_of(run_view(make_run(steps=steps, outputs={"r": 1}), {}, NOW)).splitlines()
    review = next(line for line in lines if line.startswith("review"))
    assert review.rstrip().endswith("items 40/100 ended, 5 running, 2 failed")
    parent_row = next(line for line in lines if line.startswith("child "))
    assert parent_row.rstrip().endswith("run c0ffee00 running")
    nested = [line.split()[:2] for line in lines if line.startswith("  └")]
    assert nested == [["└", "build"], ["└", "go"], ["└", "deploy"], ["└", "lint"]]
    assert any(line.split() == ["outputs", '{"r":', "1}"] for line in lines)
