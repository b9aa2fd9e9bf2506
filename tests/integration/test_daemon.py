"""The real hived with real agent processes: the PRD's examples, routing, priorities, bad input."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.helpers import Hived, wait_for

ECHO = {"python": "hivectl.agent.builtin:echo"}
SLEEP = {"python": "hivectl.agent.builtin:sleep"}


def test_socket_is_private(hived: Hived) -> None:
    assert stat.S_IMODE(hived.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(hived.socket.parent.stat().st_mode) == 0o700
    assert hived.api("GET", "/openapi.json")["info"]["title"] == "hived"


def test_registered_agent_becomes_active(hived: Hived) -> None:
    """The PRD's first example, with a real agent process."""
    hived.spawn("test-agent", ECHO, type="developer", capabilities=["python", "git"])
    agent = hived.api("GET", "/agents/test-agent")
    assert agent["status"] == "active" and agent["type"] == "developer"
    assert agent["capabilities"] == ["git", "python"]
    assert psutil.pid_exists(agent["pid"]) and os.getpgid(agent["pid"]) == agent["pid"]
    assert [i["number"] for i in agent["incarnations"]] == [1]
    workdir = hived.state_dir / "agents" / "test-agent" / "work"
    wait_for(workdir.is_dir, what="the agent's work dir (made by the agent once registered)")


def test_submitted_task_gets_an_agent_and_runs(hived: Hived) -> None:
    """The PRD's second example: a submitted task gets an agent_id (and here, runs to the end)."""
    agent = hived.spawn("reviewer", ECHO, capabilities=["code_review"])
    task = hived.submit("code_review", payload={"repo": "test-repo", "pr": "123"}, requires=["code_review"])
    done = hived.wait_task(task["id"])
    assert done["status"] == "completed" and done["agent_id"] == agent["id"]
    assert done["result"] == {"repo": "test-repo", "pr": "123"}
    assert done["attempts"] == 1 and done["attempt_history"][0]["outcome"] == "completed"


def test_exec_handler_runs_in_the_agent_workdir(hived: Hived, tmp_path: os.PathLike[str]) -> None:
    script = (
        "import json, os, sys; p = json.load(sys.stdin); "
        "print(json.dumps({'cwd': os.getcwd(), 'task': os.environ['HIVE_TASK_ID'], 'n': p['n'] * 2}))"
    )
    workdir = os.path.join(str(tmp_path), "checkout")
    hived.spawn("coder", {"exec": [sys.executable, "-c", script]}, workdir=workdir)
    task = hived.submit("code", payload={"n": 21})
    done = hived.wait_task(task["id"])
    assert done["status"] == "completed", done
    assert done["result"] == {"cwd": workdir, "task": task["id"], "n": 42}


def test_routing_by_capability_and_load(hived: Hived) -> None:
    hived.spawn("py-a", SLEEP, capabilities=["python"])
    hived.spawn("py-b", SLEEP, capabilities=["python"])
    hived.spawn("gopher", SLEEP, capabilities=["go", "git"])
    ids = {a["name"]: a["id"] for a in hived.api("GET", "/agents")["items"]}
    py = [hived.submit("build", payload={"seconds": 0.2}, requires=["python"])["id"] for _ in range(8)]
    go = [hived.submit("build", payload={"seconds": 0.05}, requires=["git", "go"])["id"] for _ in range(3)]
    nobody = hived.submit("build", requires=["rust"])["id"]
    placed = Counter(hived.wait_task(t)["agent_id"] for t in py)
    assert set(placed) == {ids["py-a"], ids["py-b"]}
    assert min(placed.values()) >= 3, placed  # equals share the load
    assert {hived.wait_task(t)["agent_id"] for t in go} == {ids["gopher"]}
    assert hived.task(nobody)["status"] == "pending" and hived.task(nobody)["agent_id"] is None


def test_waiting_task_dispatched_when_a_fitting_agent_registers(hived: Hived) -> None:
    task = hived.submit("render", requires=["gpu"])
    assert hived.task(task["id"])["status"] == "pending"
    hived.spawn("gpu-box", ECHO, capabilities=["gpu"])
    assert hived.wait_task(task["id"])["status"] == "completed"


def test_priority_order_behind_a_busy_agent(hived: Hived) -> None:
    hived.spawn("solo", SLEEP)
    blocker = hived.submit("sleep", payload={"seconds": 1.0})
    wait_for(lambda: hived.task(blocker["id"])["status"] == "running", what="blocker running")
    order = {p: hived.submit("sleep", payload={"seconds": 0}, priority=p)["id"] for p in (1, 9, 5, 0, 7)}
    finished = {p: hived.wait_task(t) for p, t in order.items()}
    by_start = sorted(order, key=lambda p: finished[p]["started_at"])
    assert by_start == [9, 7, 5, 1, 0]


def test_external_agent_registers_and_works(hived: Hived) -> None:
    env = dict(hived.env)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hivectl.agent.main",
            "--name",
            "ext-1",
            "--cap",
            "lint",
            "--python",
            "hivectl.agent.builtin:echo",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        agent = wait_for(
            lambda: next(
                (
                    a
                    for a in hived.api("GET", "/agents")["items"]
                    if a["name"] == "ext-1" and a["status"] == "active"
                ),
                None,
            ),
            what="external agent active",
        )
        assert agent["kind"] == "external" and agent["pid"] == proc.pid
        task = hived.submit("lint", payload={"file": "a.py"}, requires=["lint"])
        done = hived.wait_task(task["id"])
        assert done["agent_id"] == agent["id"] and done["result"] == {"file": "a.py"}
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "names"),
    [
        ("POST", "/tasks", {"type": "x", "priority": 10}, 422, "priority"),
        ("POST", "/tasks", {"type": "x", "priority": -1}, 422, "priority"),
        ("POST", "/tasks", {"type": "x", "payload": [1, 2]}, 422, "payload"),
        ("POST", "/tasks", {"type": "x", "payload": "text"}, 422, "payload"),
        ("POST", "/tasks", {"type": ""}, 422, "type"),
        ("POST", "/tasks", {"type": "x", "colour": "red"}, 422, "colour"),
        ("GET", "/tasks/0000dead-beef-0000-0000-000000000000", None, 404, "0000dead"),
        ("PUT", "/tasks/nope/cancel", None, 404, "nope"),
        ("POST", "/agents", {"name": "", "handler": ECHO}, 422, "name"),
        ("POST", "/agents", {"name": "Bad Name", "handler": ECHO}, 422, "name"),
        ("POST", "/agents", {"name": "a", "handler": ECHO, "max_concurrency": 0}, 422, "max_concurrency"),
        ("POST", "/agents", {"name": "a", "handler": ECHO, "capabilites": ["x"]}, 422, "capabilites"),
        ("POST", "/agents", {"name": "a", "handler": {"exec": ["x"], "python": "m:f"}}, 422, "handler"),
        (
            "POST",
            "/agents",
            {"name": "a", "handler": ECHO, "heartbeat_interval": "soon"},
            422,
            "heartbeat_interval",
        ),
        ("POST", "/agents", {"name": "a"}, 422, "handler"),
        ("GET", "/agents/ghost", None, 404, "ghost"),
        ("DELETE", "/agents/ghost", None, 404, "ghost"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    hived: Hived, method: str, path: str, body: object, status: int, names: str
) -> None:
    resp = hived.client.request(method, path, json=body)
    assert resp.status_code == status, resp.text
    detail = resp.json()["detail"]
    assert isinstance(detail, str) and names in detail
    assert hived.api("GET", "/tasks")["total"] == 0
    assert hived.api("GET", "/agents")["total"] == 0


def test_duplicate_agent_name_is_refused(hived: Hived) -> None:
    hived.spawn("dup", ECHO, wait_active=False)
    resp = hived.client.post("/agents", json={"name": "dup", "handler": ECHO})
    assert resp.status_code == 409 and "dup" in resp.json()["detail"]
    assert hived.api("GET", "/agents")["total"] == 1


def test_sigterm_stops_every_agent_and_exits_0(hived: Hived) -> None:
    hived.spawn("one", SLEEP)
    hived.spawn("two", ECHO, max_concurrency=2)
    running = hived.submit("sleep", payload={"seconds": 60})
    wait_for(lambda: hived.task(running["id"])["status"] == "running", what="long task running")
    pids = hived.agent_pids()
    assert len(pids) == 2
    assert hived.stop() == 0
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    assert not hived.socket.exists()
    assert "hived stopped" in hived.log()


def test_cancel_of_a_pending_task(hived: Hived) -> None:
    task = hived.submit("nobody-can", requires=["nothing"])
    cancelled = hived.api("PUT", f"/tasks/{task['id'][:8]}/cancel")
    assert cancelled["status"] == "cancelled"
    resp = hived.client.put(f"/tasks/{task['id']}/cancel")
    assert resp.status_code == 409 and "already cancelled" in resp.json()["detail"]


def test_kill_of_an_agent_is_noticed_and_it_restarts(hived: Hived) -> None:
    agent = hived.spawn("phoenix", ECHO)
    os.killpg(agent["pid"], signal.SIGKILL)
    again = wait_for(
        lambda: (
            (a := hived.api("GET", "/agents/phoenix"))["status"] == "active"
            and a["pid"] != agent["pid"]
            and a
        ),
        timeout=10,
        what="restarted agent",
    )
    assert again["restarts"] == 1
    first = again["incarnations"][0]
    assert first["signal"] == signal.SIGKILL and first["ended_at"] is not None


def test_a_burst_of_tasks_through_concurrent_agents(hived: Hived) -> None:
    """Many short tasks, batched submit, agents with several slots: results come back in batches."""
    hived.spawn("wide-1", {"python": "hivectl.agent.builtin:echo"}, max_concurrency=8)
    hived.spawn("wide-2", {"python": "hivectl.agent.builtin:echo"}, max_concurrency=8)
    batch = hived.api(
        "POST", "/tasks/batch", json={"tasks": [{"type": "t", "payload": {"i": i}} for i in range(300)]}
    )
    assert batch["total"] == 300
    wait_for(
        lambda: hived.api("GET", "/status")["tasks"].get("completed") == 300, timeout=60, what="300 completed"
    )
    done = hived.api("GET", "/tasks", params={"status": "completed", "limit": 300})["items"]
    assert sorted(t["result"]["i"] for t in done) == list(range(300))
    assert all(t["attempts"] == 1 for t in done)
    per_agent = Counter(t["agent_id"] for t in done)
    assert len(per_agent) == 2 and min(per_agent.values()) > 50


def test_batch_submit_is_all_or_nothing(hived: Hived) -> None:
    resp = hived.client.post(
        "/tasks/batch", json={"tasks": [{"type": "ok"}, {"type": "bad", "priority": 11}]}
    )
    assert resp.status_code == 422 and "tasks.1.priority" in resp.json()["detail"]
    assert hived.api("GET", "/tasks")["total"] == 0


def test_an_agent_s_pythonpath_reaches_its_python_handler(hived: Hived, tmp_path: Path) -> None:
    """`env: {PYTHONPATH: ...}` of an agent finds a module outside hived's path and outside the
    workdir (the agent process read PYTHONPATH from hived's environment when it started)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "shout_mod.py").write_text("def shout(payload):\n    return {'text': payload['text'].upper()}\n")
    work = tmp_path / "work"
    hived.spawn(
        "shouter",
        {"python": "shout_mod:shout"},
        capabilities=["shout"],
        env={"PYTHONPATH": str(lib)},
        workdir=str(work),
    )
    task = hived.submit("shout", requires=["shout"], payload={"text": "hi"})
    done = hived.wait_task(task["id"])
    assert (done["status"], done["result"]) == ("completed", {"text": "HI"})
