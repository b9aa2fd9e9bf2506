"""hivectl as a user runs it, against a real hived (the `hived` fixture) and real agents."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import psutil
import pytest

from tests.e2e.test_cli_offline import HIVECTL, clean_env, hivectl, one_error_line
from tests.helpers import REPO, Hived, wait_for

AGENT_FIELDS = {
    "id",
    "name",
    "type",
    "status",
    "capabilities",
    "max_concurrency",
    "pid",
    "restarts",
    "current_tasks",
    "last_heartbeat",
    "created_at",
}
TASK_FIELDS = {
    "id",
    "type",
    "status",
    "priority",
    "requires",
    "payload",
    "agent_id",
    "attempts",
    "result",
    "error",
    "created_at",
    "started_at",
    "completed_at",
}

FLEET = """\
kind: Agent
name: echo
replicas: 2
capabilities: [python]
handler: {python: "hivectl.agent.builtin:echo"}
---
kind: Agent
name: shell
capabilities: [shell]
handler:
  exec: ["python3", "greet.py"]
workdir: agents
"""


@pytest.fixture
def env(hived: Hived) -> dict[str, str]:
    return dict(hived.env)


def run_ok(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    result = hivectl(*args, env=env, stdin=stdin)
    assert result.returncode == 0, f"hivectl {' '.join(args)}: {result.returncode}\n{result.stderr}"
    return result.stdout


def wait_active(hived: Hived, *names: str) -> None:
    for name in names:
        wait_for(lambda n=name: hived.api("GET", f"/agents/{n}")["status"] in ("active", "busy"), what=name)


def test_apply_then_list_show_and_reapply(env: dict[str, str], hived: Hived, tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "greet.py").write_text((REPO / "workflows-examples/agents/greet.py").read_text())
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    assert run_ok("apply", "-f", str(fleet), env=env).splitlines() == [
        "agent/echo-1 created",
        "agent/echo-2 created",
        "agent/shell created",
    ]

    listed = json.loads(run_ok("agent", "list", "-o", "json", env=env))
    assert isinstance(listed, list) and sorted(a["name"] for a in listed) == ["echo-1", "echo-2", "shell"]
    assert all(AGENT_FIELDS <= set(agent) for agent in listed)
    shell = next(a for a in listed if a["name"] == "shell")
    assert shell["config"]["workdir"] == str(tmp_path / "agents")  # relative to the file, not to hived
    assert {a["type"] for a in listed if a["name"].startswith("echo")} == {"echo"}

    # a changed document is "configured"; the same one again is "unchanged"; stdin works as a file
    changed = FLEET.replace("capabilities: [python]", "capabilities: [python, fast]")
    assert run_ok("apply", "-f", "-", env=env, stdin=changed).splitlines()[:2] == [
        "agent/echo-1 configured",
        "agent/echo-2 configured",
    ]
    again = json.loads(run_ok("apply", "-f", "-", "-o", "json", env=env, stdin=changed))
    assert [(r["agent"]["name"], r["action"]) for r in again] == [
        ("echo-1", "unchanged"),
        ("echo-2", "unchanged"),
        ("shell", "unchanged"),
    ]

    wait_active(hived, "echo-1", "shell")
    table = run_ok("agent", "list", "--type", "echo", env=env).splitlines()
    assert table[0].split()[:3] == ["NAME", "TYPE", "STATUS"]
    assert sorted(line.split()[0] for line in table[1:]) == ["echo-1", "echo-2"]
    shown = run_ok("agent", "show", "echo-1", env=env)
    assert "capabilities" in shown and '["fast", "python"]' in shown and "INCARNATION" in shown
    by_prefix = json.loads(run_ok("agent", "show", listed[0]["id"][:8], "-o", "json", env=env))
    assert by_prefix["id"] == listed[0]["id"] and by_prefix["incarnations"][0]["number"] == 1


def test_submit_wait_prints_the_completed_task(env: dict[str, str], hived: Hived, tmp_path: Path) -> None:
    spawned = run_ok(
        "agent",
        "spawn",
        "--name",
        "echo",
        "--cap",
        "python",
        "--python",
        "hivectl.agent.builtin:echo",
        env=env,
    )
    assert spawned.strip() == "agent/echo spawned"
    wait_active(hived, "echo")

    payload = tmp_path / "payload.json"
    payload.write_text('{"answer": 42}')
    done = hivectl(
        "task", "submit", "echo", "--payload", f"@{payload}", "--requires", "python", "--wait", env=env
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split(maxsplit=1)[1] for line in done.stdout.splitlines() if line.strip()}
    assert rows["status"] == "completed"
    assert rows["result"] == '{"answer": 42}'
    assert "ATTEMPT" in rows and rows["1"].split()[:1] == ["echo"]  # the attempt, by agent name

    task_id = run_ok("task", "submit", "echo", "--payload", '{"n": 1}', "--priority", "9", env=env).strip()
    assert uuid.UUID(task_id)  # table output of submit is the bare id, for $(...)
    task = hived.wait_task(task_id)
    assert task["status"] == "completed" and task["priority"] == 9

    listed = json.loads(run_ok("task", "list", "--status", "completed", "-o", "json", env=env))
    assert task_id in {t["id"] for t in listed} and all(TASK_FIELDS <= set(t) for t in listed)
    assert run_ok("task", "list", "--type", "nothing-like-this", "-o", "json", env=env).strip() == "[]"
    table = run_ok("task", "list", "--agent", "echo", "--limit", "1", env=env).splitlines()
    assert len(table) == 2 and table[1].split()[0] == task_id[:8] and table[1].split()[4] == "echo"
    shown = json.loads(run_ok("task", "show", task_id[:8], "-o", "json", env=env))
    assert shown["result"] == {"n": 1} and shown["attempt_history"][0]["outcome"] == "completed"


def test_wait_exits_1_when_the_task_does_not_complete(env: dict[str, str], hived: Hived) -> None:
    # Nothing has this capability: the task stays queued until it is cancelled from elsewhere.
    waiting = subprocess.Popen(
        [*HIVECTL, "task", "submit", "lonely", "--requires", "nobody", "--wait", "-o", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        task = wait_for(lambda: (items := hived.api("GET", "/tasks")["items"]) and items[0], what="submitted")
        cancelled = run_ok("task", "cancel", task["id"][:8], env=env)
        assert cancelled.strip() == f"task/{task['id']} cancelled"
        out, err = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 1, err
    assert json.loads(out)["status"] == "cancelled"

    retried = json.loads(run_ok("task", "retry", task["id"], "-o", "json", env=env))
    assert retried["status"] in ("pending", "retrying") and retried["type"] == "lonely"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["task", "show", "ffffffff"], "task 'ffffffff' not found"),
        (["task", "cancel", "ffffffff"], "task 'ffffffff' not found"),
        (["task", "logs", "ffffffff"], "task 'ffffffff' not found"),
        (["agent", "show", "ghost"], "agent 'ghost' not found"),
        (["agent", "restart", "ghost"], "agent 'ghost' not found"),
        (["agent", "rm", "ghost"], "agent 'ghost' not found"),
        (["agent", "logs", "ghost"], "agent 'ghost' not found"),
    ],
)
def test_unknown_ids_exit_1(env: dict[str, str], args: list[str], message: str) -> None:
    result = hivectl(*args, env=env)
    assert result.returncode == 1
    assert message in one_error_line(result)


def test_spawn_conflict_and_removal(env: dict[str, str], hived: Hived) -> None:
    args = ("agent", "spawn", "--name", "solo", "--exec", "python3 -c pass")
    run_ok(*args, env=env)
    again = hivectl(*args, env=env)
    assert again.returncode == 1 and "solo" in one_error_line(again)
    removed = json.loads(run_ok("agent", "rm", "solo", "--drain", "--timeout", "5", "-o", "json", env=env))
    assert removed["name"] == "solo" and removed["status"] == "stopped"
    assert "solo" not in {a["name"] for a in hived.api("GET", "/agents")["items"] if a["status"] != "stopped"}


def test_status_counts(env: dict[str, str], hived: Hived) -> None:
    hived.submit("queued", requires=["nobody"])
    data = json.loads(run_ok("status", "-o", "json", env=env))
    assert data["queue_depth"] == 1 and data["tasks"].get("pending") == 1
    rows = run_ok("status", env=env)
    assert "health" in rows and "queue depth  1" in rows


def _reader(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def test_logs_and_follow_across_a_restart(env: dict[str, str], hived: Hived) -> None:
    hived.spawn("echo", {"python": "hivectl.agent.builtin:echo"})
    assert "incarnation 1" in run_ok("agent", "logs", "echo", env=env)
    follower = subprocess.Popen(
        [*HIVECTL, "agent", "logs", "echo", "-f"], env=env, stdout=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    thread = threading.Thread(target=_reader, args=(follower.stdout, lines), daemon=True)
    thread.start()
    try:
        seen: list[str] = []

        def saw(text: str) -> bool:
            while not lines.empty():
                seen.append(lines.get())
            return any(text in line for line in seen)

        wait_for(lambda: saw("incarnation 1"), what="the first incarnation's log")
        run_ok("agent", "restart", "echo", env=env)
        wait_for(lambda: saw("incarnation 2"), timeout=30, what=f"the second incarnation's log in {seen}")
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(10)
        thread.join(10)
        assert follower.stdout is not None
        follower.stdout.close()
    assert follower.returncode == 130

    task = hived.submit("echo", payload={"x": 1})
    hived.wait_task(task["id"])
    chunks = [
        json.loads(line) for line in run_ok("task", "logs", task["id"], "-o", "json", env=env).splitlines()
    ]
    assert all(set(chunk) == {"text", "offset"} for chunk in chunks)
    assert run_ok("task", "logs", task["id"][:8], env=env) == "".join(c["text"] for c in chunks)


@pytest.fixture
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A short state dir (socket paths are limited); any hived left running in it is killed."""
    state = tmp_path_factory.mktemp("d")
    yield state
    try:
        pid = int((state / "hived.pid").read_text())
        proc = psutil.Process(pid)
        victims = [proc, *proc.children(recursive=True)]
    except (OSError, ValueError, psutil.Error):
        return
    for victim in victims:
        try:
            os.killpg(victim.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def test_daemon_start_status_stop(state_dir: Path) -> None:
    env = clean_env(HIVE_STATE_DIR=str(state_dir))  # the socket follows the state dir
    started = hivectl("daemon", "start", "-o", "json", env=env)
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    pid = int((state_dir / "hived.pid").read_text())
    assert info["status"] == "started" and info["pid"] == pid and psutil.pid_exists(pid)
    assert info["endpoint"] == f"unix:{state_dir / 'hived.sock'}"

    again = hivectl("daemon", "start", env=env)
    assert again.returncode == 0 and again.stdout.startswith(f"hived is already running (pid {pid}")
    status = json.loads(run_ok("daemon", "status", "-o", "json", env=env))
    assert status["status"] == "ok" and status["pid"] == pid
    assert "queue depth" in run_ok("status", env=env)  # the default endpoint finds it

    stopped = hivectl("daemon", "stop", env=env)
    assert (stopped.returncode, stopped.stdout.strip()) == (0, f"hived stopped (pid {pid})")
    assert not (state_dir / "hived.pid").exists()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert hivectl("daemon", "status", env=env).returncode == 3
    assert run_ok("daemon", "stop", env=env).strip() == "hived is not running"


def test_daemon_start_that_fails_shows_the_log(state_dir: Path) -> None:
    env = clean_env(HIVE_STATE_DIR=str(state_dir))
    result = hivectl("daemon", "start", "--db", "nosuchdb://x", env=env)
    assert result.returncode == 1
    assert "nosuchdb" in result.stderr  # the last lines of hived.log
    assert result.stderr.splitlines()[-1] == (
        f"error: hived exited with code 1 (log: {state_dir / 'hived.log'})"
    )
    assert not (state_dir / "hived.pid").exists()
