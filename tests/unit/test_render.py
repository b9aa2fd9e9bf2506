"""hivectl's rendering: pure table builders and the JSON/YAML shapes scripts rely on."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from rich.console import Console, RenderableType

from hivectl.cli import render
from hivectl.cli.render import Output
from hivectl.client import Applied, LogChunk
from hived.model.schemas import Agent, AgentDetail, Attempt, Incarnation, Status, Task, TaskDetail

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def text_of(view: RenderableType) -> str:
    con = Console(file=io.StringIO(), width=300, color_system=None)
    with con.capture() as captured:
        con.print(view)
    return captured.get()


def make_agent(**fields: Any) -> Agent:
    base: dict[str, Any] = {
        "id": "a1b2c3d4-0000-0000-0000-000000000001",
        "name": "reviewer",
        "type": "review",
        "kind": "spawned",
        "status": "busy",
        "capabilities": ["code_review", "python"],
        "max_concurrency": 2,
        "pid": 4242,
        "incarnation": 3,
        "restarts": 2,
        "current_tasks": ["t1"],
        "tasks_done": 17,
        "tasks_failed": 1,
        "last_heartbeat": ago(3),
        "created_at": ago(7200),
        "config": {"env": {"MODEL": "small"}},
    }
    return Agent.model_validate(base | fields)


def make_task(**fields: Any) -> Task:
    base: dict[str, Any] = {
        "id": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "type": "review",
        "status": "running",
        "priority": 7,
        "requires": ["python"],
        "payload": {"pr": 12},
        "agent_id": "a1b2c3d4-0000-0000-0000-000000000001",
        "attempts": 1,
        "max_attempts": 3,
        "result": None,
        "error": None,
        "created_at": ago(90),
        "started_at": ago(60),
        "completed_at": None,
    }
    return Task.model_validate(base | fields)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (None, "-"),
        (ago(0), "0s"),
        (ago(3.7), "3s"),
        (ago(59), "59s"),
        (ago(60), "1m"),
        (ago(3599), "59m"),
        (ago(3600 * 5 + 10), "5h"),
        (ago(86400 * 4), "4d"),
        (NOW + timedelta(seconds=5), "0s"),  # clocks disagree a little: never a negative age
        (ago(30).replace(tzinfo=None), "30s"),  # naive times are UTC
    ],
)
def test_age(when: datetime | None, expected: str) -> None:
    assert render.age(when, NOW) == expected


def test_counts_follow_the_lifecycle_and_skip_zeros() -> None:
    by_status = {"stopped": 1, "busy": 2, "weird": 1, "active": 3, "failed": 0}
    assert render.counts(by_status, render.AGENT_ORDER) == "active 3, busy 2, stopped 1, weird 1"
    assert render.counts({}, render.TASK_ORDER) == "none"


def test_agents_table_has_the_operator_columns() -> None:
    idle = make_agent(name="idle", status="active", pid=None, current_tasks=[], last_heartbeat=None)
    lines = text_of(render.agents_table([make_agent(), idle], NOW)).splitlines()
    assert lines[0].split() == [
        "NAME",
        "TYPE",
        "STATUS",
        "CAPABILITIES",
        "TASKS",
        "DONE",
        "FAILED",
        "RESTARTS",
        "PID",
        "HEARTBEAT",
        "AGE",
    ]
    assert lines[1].split() == ["reviewer", "review", "busy", "code_review,python", "1/2", "17", "1", "2"] + [
        "4242",
        "3s",
        "2h",
    ]
    assert lines[2].split()[:5] == ["idle", "review", "active", "code_review,python", "0/2"]
    assert lines[2].split()[-3:] == ["-", "-", "2h"]


def test_tasks_table_shows_short_ids_and_agent_names() -> None:
    named = make_task()
    unknown = make_task(
        id="ffffffff-1111-2222-3333-444444444444", agent_id="99999999-dead-beef", status="failed"
    )
    queued = make_task(id="12345678-aaaa", agent_id=None, status="pending", attempts=0)
    names = {named.agent_id or "": "reviewer"}
    lines = text_of(render.tasks_table([named, unknown, queued], names, NOW)).splitlines()
    assert lines[0].split() == ["ID", "TYPE", "STATUS", "PRIORITY", "AGENT", "ATTEMPTS", "AGE"]
    assert lines[1].split() == ["0f1e2d3c", "review", "running", "7", "reviewer", "1/3", "1m"]
    assert lines[2].split()[:5] == ["ffffffff", "review", "failed", "7", "99999999"]
    assert lines[3].split()[:6] == ["12345678", "review", "pending", "7", "-", "0/3"]


def test_user_text_is_never_read_as_markup() -> None:
    task = TaskDetail.model_validate(
        make_task(status="failed", error="KeyError: [bold]x[/bold]").model_dump()
        | {
            "attempt_history": [
                Attempt(number=1, agent_id=None, started_at=ago(5), outcome="failed", error="[red]boom[/]")
            ]
        }
    )
    text = text_of(render.task_view(task, {}, NOW))
    assert "KeyError: [bold]x[/bold]" in text
    assert "[red]boom[/]" in text


def test_task_view_lists_the_attempts() -> None:
    attempts = [
        Attempt(
            number=1,
            agent_id="a1b2c3d4-0000-0000-0000-000000000001",
            started_at=ago(30),
            ended_at=ago(27.5),
            outcome="failed",
            reason="exit",
            error="exit code 2",
        ),
        Attempt(number=2, agent_id="a1b2c3d4-0000-0000-0000-000000000001", started_at=ago(10)),
    ]
    task = TaskDetail.model_validate(make_task(attempts=2).model_dump() | {"attempt_history": attempts})
    text = text_of(render.task_view(task, {"a1b2c3d4-0000-0000-0000-000000000001": "reviewer"}, NOW))
    lines = text.splitlines()
    assert lines[0].split() == ["id", task.id]
    assert any(line.split()[:2] == ["payload", '{"pr":'] for line in lines)
    header = next(i for i, line in enumerate(lines) if line.startswith("ATTEMPT"))
    assert lines[header + 1].split() == [
        "1",
        "reviewer",
        "30s",
        "ago",
        "2.5s",
        "failed",
        "exit",
        "exit",
        "code",
        "2",
    ]
    assert lines[header + 2].split()[:6] == ["2", "reviewer", "10s", "ago", "-", "running"]
    assert "attempt_history" not in text


def test_agent_view_lists_incarnations() -> None:
    incarnations = [
        Incarnation(number=1, pid=10, started_at=ago(600), ended_at=ago(300), exit_code=1, reason="crashed"),
        Incarnation(number=2, pid=11, started_at=ago(200), ended_at=ago(100), signal=9, reason="killed"),
        Incarnation(number=3, pid=12, hostname="box", started_at=ago(60)),
    ]
    agent = AgentDetail.model_validate(make_agent().model_dump() | {"incarnations": incarnations})
    lines = text_of(render.agent_view(agent, NOW)).splitlines()
    assert ["status", "busy"] in [line.split() for line in lines]
    header = next(i for i, line in enumerate(lines) if line.startswith("INCARNATION"))
    assert lines[header + 1].split() == ["1", "10", "-", "10m", "ago", "5m", "ago", "1", "crashed"]
    assert lines[header + 2].split() == ["2", "11", "-", "3m", "ago", "1m", "ago", "signal", "9", "killed"]
    assert lines[header + 3].split() == ["3", "12", "box", "1m", "ago", "running", "-", "-"]


def test_status_view() -> None:
    status = Status(
        version="1.2.3",
        database="sqlite",
        agents={"busy": 1, "active": 2},
        tasks={"pending": 4},
        queue_depth=4,
        runs={"succeeded": 2, "running": 1},
    )
    text = text_of(render.status_view(status, "ok"))
    rows = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in text.splitlines()]
    assert rows == [
        ["health", "ok"],
        ["version", "1.2.3"],
        ["database", "sqlite"],
        ["agents", "active 2, busy 1"],
        ["tasks", "pending 4"],
        ["queue depth", "4"],
        ["runs", "running 1, succeeded 2"],
    ]


def test_json_is_the_api_object_and_lists_are_arrays() -> None:
    agent = make_agent()
    out = io.StringIO()
    render.emit([agent], Output.json, lambda: "unused", file=out)
    data = json.loads(out.getvalue())
    assert data == [json.loads(agent.model_dump_json())]
    assert data[0]["created_at"] == "2026-01-02T10:00:00Z"
    assert set(data[0]) >= {
        "id",
        "name",
        "type",
        "status",
        "capabilities",
        "pid",
        "restarts",
        "last_heartbeat",
    }


def test_yaml_of_an_apply_result() -> None:
    out = io.StringIO()
    render.emit([Applied(agent=make_agent(), action="created")], Output.yaml, lambda: "unused", file=out)
    data = yaml.safe_load(out.getvalue())
    assert data[0]["action"] == "created" and data[0]["agent"]["name"] == "reviewer"


def test_tables_for_pipes_have_no_trailing_blanks() -> None:
    out = io.StringIO()
    render.emit(
        [], Output.table, lambda: render.agents_table([make_agent(), make_agent(name="x")], NOW), file=out
    )
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and all(line == line.rstrip() for line in lines)
    assert "\x1b[" not in out.getvalue()  # no colour codes when piped


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (Output.table, "line 1\nline 2\n"),
        (Output.json, '{"text": "line 1\\nline 2\\n", "offset": 14}\n'),
        (Output.yaml, "---\ntext: 'line 1\n\n  line 2\n\n  '\noffset: 14\n"),
    ],
)
def test_log_chunks(output: Output, expected: str) -> None:
    out = io.StringIO()
    render.log_chunk(LogChunk("line 1\nline 2\n", 14), output, file=out)
    assert out.getvalue() == expected


def test_agent_order_has_every_agent_status_and_unscheduled_after_lost() -> None:
    from hived.model.states import AgentStatus

    assert sorted(render.AGENT_ORDER) == sorted(s.value for s in AgentStatus)
    by_status = {"stopped": 1, "unscheduled": 2, "lost": 1, "active": 3}
    assert render.counts(by_status, render.AGENT_ORDER) == "active 3, lost 1, unscheduled 2, stopped 1"
    assert render.STATUS_STYLES["unscheduled"]  # shown in its own colour, not plain
