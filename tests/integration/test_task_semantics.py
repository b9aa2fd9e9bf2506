"""Retries, timeouts, stalls, result checks, cancellation, idempotency, fencing: with real agents."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil

from tests.helpers import Hived, wait_for

FLAKY = """
import json, os, sys
attempt = int(os.environ["HIVE_ATTEMPT"])
payload = json.load(sys.stdin)
if attempt < payload["succeed_on"]:
    print(f"attempt {attempt} failing", file=sys.stderr)
    sys.exit(3)
print(json.dumps({"attempt": attempt}))
"""

SLOW = """
import json, os, subprocess, sys, time
payload = json.load(sys.stdin)
child = subprocess.Popen(["sleep", "60"])
open(payload["pidfile"], "w").write(str(child.pid))
print("started", flush=True)
time.sleep(payload.get("sleep", 60))
"""

CHATTY_THEN_SILENT = """
import sys, time
for i in range(3):
    print(f"tick {i}", flush=True)
    time.sleep(0.1)
time.sleep(60)
"""


def script(tmp: Path, name: str, text: str) -> list[str]:
    path = tmp / f"{name}.py"
    path.write_text(text)
    return [sys.executable, str(path)]


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_fails_twice_then_completes_with_growing_delays(hived: Hived, tmp_path: Path) -> None:
    hived.spawn("flaky", {"exec": script(tmp_path, "flaky", FLAKY)})
    task = hived.submit(
        "x", payload={"succeed_on": 3}, retry={"initial": "200ms", "multiplier": 6, "jitter": 0}
    )
    done = hived.wait_task(task["id"])
    assert done["status"] == "completed" and done["attempts"] == 3 and done["result"] == {"attempt": 3}
    history = done["attempt_history"]
    assert [a["outcome"] for a in history] == ["failed", "failed", "completed"]
    assert history[0]["error"] == "exit code 3: attempt 1 failing"
    gap1 = (ts(history[1]["started_at"]) - ts(history[0]["ended_at"])).total_seconds()
    gap2 = (ts(history[2]["started_at"]) - ts(history[1]["ended_at"])).total_seconds()
    # Delays of 0.2 s then 1.2 s: a loaded machine adds up to ~0.7 s to a gap, so a smaller step than
    # 1 s could invert gap2 > gap1 (seen with 0.2 s then 0.6 s: gaps of 0.92 s and 0.88 s).
    assert gap1 >= 0.2 and gap2 >= 1.2 and gap2 > gap1


def test_exhausted_task_is_failed_with_its_last_error(hived: Hived, tmp_path: Path) -> None:
    hived.spawn("flaky", {"exec": script(tmp_path, "flaky", FLAKY)})
    task = hived.submit("x", payload={"succeed_on": 9}, max_attempts=2, retry={"initial": "50ms"})
    done = hived.wait_task(task["id"])
    assert done["status"] == "failed" and done["attempts"] == 2
    assert done["error"] == "exit code 3: attempt 2 failing"
    dead = hived.api("GET", "/tasks", params={"status": "failed"})["items"]
    assert [t["id"] for t in dead] == [task["id"]]
    again = hived.api("POST", f"/tasks/{task['id']}/retry")
    assert again["status"] == "pending" and again["attempts"] == 0


def test_timeout_kills_the_whole_process_group(hived: Hived, tmp_path: Path) -> None:
    hived.spawn("slow", {"exec": script(tmp_path, "slow", SLOW)})
    pidfile = tmp_path / "grandchild.pid"
    task = hived.submit("x", payload={"pidfile": str(pidfile)}, timeout="1s", max_attempts=1)
    done = hived.wait_task(task["id"])
    assert done["status"] == "failed" and done["attempt_history"][0]["reason"] == "timeout"
    grandchild = int(pidfile.read_text())
    wait_for(
        lambda: not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie",
        what="grandchild killed",
    )


def test_stall_kills_a_silent_handler(hived: Hived, tmp_path: Path) -> None:
    hived.spawn("chatty", {"exec": script(tmp_path, "chatty", CHATTY_THEN_SILENT)})
    task = hived.submit("x", stall_timeout="700ms", max_attempts=1)
    done = hived.wait_task(task["id"])
    assert done["status"] == "failed" and done["attempt_history"][0]["reason"] == "stalled"
    logs = hived.api("GET", f"/tasks/{task['id']}/logs")
    assert "tick 0" in logs and "tick 2" in logs


def test_success_when_false_retries_then_fails(hived: Hived) -> None:
    hived.spawn("lazy", {"python": "hivectl.agent.builtin:echo"})
    lazy = hived.submit(
        "code",
        payload={"files_changed": 0},
        success_when="result.files_changed > 0",
        max_attempts=2,
        retry={"initial": "50ms"},
    )
    done = hived.wait_task(lazy["id"])
    assert done["status"] == "failed" and done["attempts"] == 2
    assert [a["reason"] for a in done["attempt_history"]] == ["check_failed", "check_failed"]
    good = hived.submit("code", payload={"files_changed": 2}, success_when="result.files_changed > 0")
    assert hived.wait_task(good["id"])["status"] == "completed"
    bad = hived.client.post("/tasks", json={"type": "x", "success_when": "result.x >"})
    assert bad.status_code == 422 and "success_when" in bad.json()["detail"]


def test_cancel_running_task_frees_the_agent(hived: Hived, tmp_path: Path) -> None:
    hived.spawn("busy", {"exec": script(tmp_path, "slow", SLOW)})
    pidfile = tmp_path / "g.pid"
    task = hived.submit("x", payload={"pidfile": str(pidfile)})
    wait_for(lambda: pidfile.exists() and hived.task(task["id"])["status"] == "running", what="running")
    started = time.monotonic()
    cancelled = hived.api("PUT", f"/tasks/{task['id']}/cancel")
    assert cancelled["status"] == "cancelled"
    grandchild = int(pidfile.read_text())
    wait_for(
        lambda: not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie",
        timeout=5,
        what="handler killed",
    )
    assert time.monotonic() - started < 5
    follow_up = hived.submit("x", payload={"pidfile": str(tmp_path / "h.pid"), "sleep": 0})
    assert hived.wait_task(follow_up["id"])["status"] == "completed"
    assert hived.task(task["id"])["status"] == "cancelled" and hived.task(task["id"])["attempts"] == 1


def test_idempotent_resubmit(hived: Hived) -> None:
    first = hived.submit("x", payload={"a": 1}, idempotency_key="order-42", requires=["nobody"])
    again = hived.submit("x", payload={"a": 1}, idempotency_key="order-42", requires=["nobody"])
    assert again["id"] == first["id"]
    clash = hived.client.post(
        "/tasks", json={"type": "x", "payload": {"a": 2}, "idempotency_key": "order-42"}
    )
    assert clash.status_code == 409 and first["id"] in clash.json()["detail"]
    assert hived.api("GET", "/tasks")["total"] == 1


def test_stale_completion_is_refused(hived: Hived) -> None:
    agent = hived.spawn("sleeper", {"python": "hivectl.agent.builtin:sleep"})
    task = hived.submit("x", payload={"seconds": 0.5})
    running = wait_for(lambda: (t := hived.task(task["id"]))["status"] == "running" and t, what="running")
    body = {
        "agent_id": agent["id"],
        "attempt": running["attempts"],
        "lease": 1_000_000,
        "result": {"forged": 1},
    }
    resp = hived.client.post(f"/tasks/{task['id']}/complete", json=body)
    assert resp.status_code == 409 and "stale" in resp.json()["detail"]
    done = hived.wait_task(task["id"])
    assert done["status"] == "completed" and done["result"] == {"slept": 0.5}


def test_env_of_an_exec_handler(hived: Hived, tmp_path: Path) -> None:
    probe = "import json, os; print(json.dumps({k: os.environ.get(k) for k in ('HIVE_TASK_TYPE', 'MODEL')}))"
    hived.spawn("envy", {"exec": [sys.executable, "-c", probe]}, env={"MODEL": "small"})
    done = hived.wait_task(hived.submit("probe")["id"])
    assert done["result"] == {"HIVE_TASK_TYPE": "probe", "MODEL": "small"}
    assert os.environ.get("MODEL") != "small"  # the agent's env is its own
