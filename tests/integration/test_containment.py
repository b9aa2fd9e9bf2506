"""Item 9 of the hardening issue: an attempt's processes do not outlive the attempt or its agent.

The exec handler below starts two children, one in its own process group and one in a new session
(`setsid`, as a daemonizing tool would), writes their pids to a file, then exits or hangs."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import psutil

from tests.helpers import Hived, wait_for

HANDLER = r"""
import json, os, subprocess, sys, time
payload = json.load(sys.stdin)
sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
same_group = subprocess.Popen(sleeper, **quiet)
new_session = subprocess.Popen(sleeper, start_new_session=True, **quiet)
pids = {"handler": os.getpid(), "same_group": same_group.pid, "new_session": new_session.pid}
with open(payload["out"] + ".tmp", "w") as fh:
    json.dump(pids, fh)
os.rename(payload["out"] + ".tmp", payload["out"])
if payload.get("hang"):
    time.sleep(300)
print(json.dumps({"ok": True}))
"""


def alive(pid: int, created: float) -> bool:
    """The process still runs (a zombie has stopped; a reused pid is another process)."""
    try:
        proc = psutil.Process(pid)
        return proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def created(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return -1.0  # gone already


def started(out: Path) -> dict[str, tuple[int, float]]:
    pids = json.loads(wait_for(lambda: out.exists() and out.read_text(), what="the handler's pids"))
    return {name: (pid, created(pid)) for name, pid in pids.items()}


def spawn_leaky(hived: Hived, tmp_path: Path, name: str) -> dict[str, object]:
    script = tmp_path / "leaky.py"
    script.write_text(HANDLER)
    return hived.spawn(name, {"exec": [sys.executable, str(script)]}, restart={"initial_delay": "100ms"})


def test_item9_a_setsid_child_does_not_outlive_its_attempt(hived: Hived, tmp_path: Path) -> None:
    spawn_leaky(hived, tmp_path, "leaky")
    out = tmp_path / "pids.json"
    task = hived.submit("leak", payload={"out": str(out)})
    assert hived.wait_task(task["id"])["status"] == "completed"
    procs = started(out)
    wait_for(
        lambda: not any(alive(*procs[name]) for name in ("same_group", "new_session")),
        timeout=5,
        what="the handler's children killed at the end of the attempt",
    )


def test_item9_orphans_of_a_killed_agent_are_killed(hived: Hived, tmp_path: Path) -> None:
    agent = spawn_leaky(hived, tmp_path, "leaky-victim")
    out = tmp_path / "pids.json"
    task = hived.submit("leak", payload={"out": str(out), "hang": True}, max_attempts=1)
    procs = started(out)
    os.kill(int(agent["pid"]), signal.SIGKILL)  # the agent only: its handlers are in other groups
    wait_for(lambda: hived.task(task["id"])["status"] == "failed", timeout=10, what="the attempt failed")
    wait_for(
        lambda: not [name for name, proc in procs.items() if alive(*proc)],
        timeout=5,
        what="the handler and both its children killed after the agent died",
    )
