"""hivectl as a user runs it: the real executable against a real hived."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, Hived, wait_for


def hivectl(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hivectl.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        cwd=REPO,
    )


@pytest.fixture
def env(hived: Hived) -> dict[str, str]:
    return dict(hived.env)


AGENTS = """\
kind: Agent
name: greeter
capabilities: [shell]
handler:
  exec: ["python3", "agents/greet.py"]
workdir: .
---
kind: Agent
name: echo
replicas: 2
capabilities: [python]
handler: {python: "hivectl.agent.builtin:echo"}
"""


def test_apply_submit_wait_and_list(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "greet.py").write_text((REPO / "workflows-examples/agents/greet.py").read_text())
    (tmp_path / "fleet.yaml").write_text(AGENTS)
    applied = hivectl("apply", "-f", str(tmp_path / "fleet.yaml"), env=env)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == [
        "agent/greeter created",
        "agent/echo-1 created",
        "agent/echo-2 created",
    ]
    again = hivectl("apply", "-f", str(tmp_path / "fleet.yaml"), env=env)
    assert again.stdout.count("unchanged") == 3

    listed = json.loads(hivectl("agent", "list", "-o", "json", env=env).stdout)
    assert sorted(a["name"] for a in listed) == ["echo-1", "echo-2", "greeter"]
    greeter = next(a for a in listed if a["name"] == "greeter")
    assert greeter["config"]["workdir"] == str(tmp_path)

    done = hivectl(
        "task",
        "submit",
        "greet",
        "--payload",
        '{"name": "ops"}',
        "--requires",
        "shell",
        "--wait",
        "-o",
        "json",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)
    assert task["status"] == "completed" and task["result"]["greeting"] == "hello, ops"

    table = hivectl("task", "list", env=env).stdout
    assert "greet" in table and "completed" in table and "greeter" in table
    shown = hivectl("task", "show", task["id"][:8], "-o", "yaml", env=env)
    assert shown.returncode == 0 and "status: completed" in shown.stdout
    view = hivectl("task", "show", task["id"][:8], env=env)  # the agents it names, read one by one
    assert view.returncode == 0
    assert any(line.split()[:2] == ["1", "greeter"] for line in view.stdout.splitlines()), view.stdout


def test_failed_task_with_wait_exits_1(env: dict[str, str], hived: Hived) -> None:
    hived.spawn("failer", {"python": "hivectl.agent.builtin:fail"})
    result = hivectl(
        "task",
        "submit",
        "x",
        "--payload",
        '{"message": "nope"}',
        "--max-attempts",
        "1",
        "--wait",
        "-o",
        "json",
        env=env,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"] == "RuntimeError: nope"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["task", "show", "ffffffff"], 1, "task 'ffffffff' not found"),
        (["agent", "show", "ghost"], 1, "agent 'ghost' not found"),
        (["task", "submit", "x", "--payload", "[1]"], 2, "--payload: must be a JSON object"),
        (["task", "submit", "x", "--payload", "{nope"], 2, "--payload: not JSON"),
        (["task", "submit", "x", "--priority", "12"], 1, "priority: Input should be less than or equal to 9"),
        (["agent", "list", "-o", "xml"], 2, "xml"),
        (["agent", "spawn", "--name", "x"], 2, "give a handler"),
    ],
)
def test_bad_input(env: dict[str, str], hived: Hived, args: list[str], code: int, message: str) -> None:
    result = hivectl(*args, env=env)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert hived.api("GET", "/tasks")["total"] == 0


def test_apply_reports_file_and_line_and_sends_nothing(
    env: dict[str, str], hived: Hived, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: Agent\nname: fine\nhandler: {python: 'a:b'}\n---\nkind: Agent\nname: oops\ncapabilites: [x]\n"
    )
    result = hivectl("apply", "-f", str(bad), env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {bad}:7: unknown key 'capabilites'"
    assert hived.api("GET", "/agents")["total"] == 0


def test_daemon_unreachable_exits_3(tmp_path: Path) -> None:
    env = {**os.environ, "HIVE_SOCKET": str(tmp_path / "nothing.sock"), "HIVE_STATE_DIR": str(tmp_path)}
    result = hivectl("agent", "list", env=env)
    assert result.returncode == 3
    assert "hivectl daemon start" in result.stderr and "Traceback" not in result.stderr


def test_daemon_start_status_stop(tmp_path: Path) -> None:
    state = tmp_path / "s"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIVE_")}
    env.update(HIVE_STATE_DIR=str(state), HIVE_SOCKET=str(state / "hived.sock"))
    started = hivectl("daemon", "start", env=env)
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        assert "hived started" in started.stdout
        assert hivectl("daemon", "start", env=env).stdout.startswith("hived is already running")
        status = json.loads(hivectl("daemon", "status", "-o", "json", env=env).stdout)
        assert status["status"] == "ok" and status["pid"] > 0
    finally:
        stopped = hivectl("daemon", "stop", env=env)
    assert stopped.returncode == 0 and "hived stopped" in stopped.stdout
    wait_for(lambda: not (state / "hived.sock").exists(), what="socket removed")
    assert hivectl("daemon", "status", env=env).returncode == 3


def test_events_lists_what_happened(env: dict[str, str], hived: Hived) -> None:
    hived.spawn("evented", {"python": "hivectl.agent.builtin:echo"})
    task = hived.wait_task(hived.submit("t")["id"])
    result = hivectl("events", "-o", "json", env=env)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert any(e["kind"] == "task.completed" and e["task_id"] == task["id"] for e in events)
    assert any(e["kind"] == "agent.status" and e["agent"] == "evented" for e in events)
    table = hivectl("events", env=env)
    assert "task.completed" in table.stdout
