"""`hive-tui` and interactive tasks on a real terminal (tmux, read back with capture-pane): the Queue
pane lists a task waiting for input first, highlighted, above older tasks; Enter attaches to its
terminal (the dashboard steps aside), the answer typed there reaches the handler, and the dashboard
comes back when the session ends."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.helpers import Hived, wait_for

TMUX = shutil.which("tmux")
HIVE_TUI = Path(sys.executable).parent / "hive-tui"
ASK = """
import json
answer = input("Deploy now? [y/n] ")
print(json.dumps({"answer": answer}))
"""


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_waiting_task_listed_first_and_enter_attaches_to_it(hived: Hived, tmp_path: Path) -> None:
    hived.spawn("quick", {"python": "hivectl.agent.builtin:echo"}, capabilities=["quick"])
    older = [hived.submit("noop", requires=["quick"]) for _ in range(3)]
    for task in older:
        hived.wait_task(task["id"])
    script = tmp_path / "ask.py"
    script.write_text(ASK)
    handler = {"exec": [sys.executable, str(script)], "tty": True, "prompt_pattern": r"\[y/n\] $"}
    hived.spawn("talker", {**handler, "input_timeout": "0.3s"}, capabilities=["talk"])
    task = hived.submit("ask", requires=["talk"])
    wait_for(lambda: hived.task(task["id"])["status"] == "waiting_input", what="the task at its prompt")
    base = [TMUX or "tmux", "-L", f"hive-test-{uuid.uuid4().hex[:8]}", "-f", os.devnull]

    def tmux(*args: str) -> str:
        return subprocess.run([*base, *args], capture_output=True, text=True, check=True).stdout

    env = ["env", "-u", "TMUX", f"HIVE_SOCKET={hived.socket}", "TERM=xterm-256color"]
    tmux("new-session", "-d", "-s", "tui", "-x", "150", "-y", "40", *env, str(HIVE_TUI))
    try:
        wait_for(
            lambda: "talker" in tmux("capture-pane", "-p", "-t", "tui"), timeout=30, what="the dashboard"
        )
        tmux("send-keys", "-t", "tui", "2")
        screen = wait_for(
            lambda: (text := tmux("capture-pane", "-p", "-t", "tui")) and "waiting_input" in text and text,
            timeout=15,
            what="the waiting task in the Queue pane",
        )
        rows = [line for line in screen.splitlines() if any(t["id"][:8] in line for t in [task, *older])]
        assert len(rows) == 4 and task["id"][:8] in rows[0] and "waiting_input" in rows[0], screen
        assert "input:" in rows[0] and all("completed" in row for row in rows[1:]), screen
        tmux("send-keys", "-t", "tui", "Enter")
        wait_for(
            lambda: (
                "Deploy now? [y/n]" in (text := tmux("capture-pane", "-p", "-t", "tui"))
                and "2 Queue" not in text
            ),
            timeout=15,
            what="the task's terminal in place of the dashboard",
        )
        tmux("send-keys", "-t", "tui", "-l", "yes")
        tmux("send-keys", "-t", "tui", "Enter")
        done = hived.wait_task(task["id"])
        assert done["status"] == "completed" and done["result"] == {"answer": "yes"}
        wait_for(
            lambda: "2 Queue" in tmux("capture-pane", "-p", "-t", "tui"),
            timeout=15,
            what="the dashboard back",
        )
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True)
