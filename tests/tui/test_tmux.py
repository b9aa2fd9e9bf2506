"""`hive-tui` on a real terminal: started in tmux, read back with `tmux capture-pane`, as a person
would see it (the agents, the runs, the Limits pane with a limit that holds a task back, and the Nodes
pane with this hived and its agent); then `q` quits it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.helpers import Hived, wait_for

TMUX = shutil.which("tmux")
HIVE_TUI = Path(sys.executable).parent / "hive-tui"


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_hive_tui_in_tmux(hived: Hived) -> None:
    hived.spawn("on-screen", {"python": "hivectl.agent.builtin:echo"})
    hived.api("PUT", "/limits/llm-api", json={"name": "llm-api", "rate": "1/h"})  # one token, then none
    first, second = (hived.submit("ask", limits=[{"name": "llm-api"}]) for _ in range(2))
    hived.wait_task(first["id"])
    assert hived.task(second["id"])["waiting_reason"] == "limit llm-api"
    server = f"hive-test-{uuid.uuid4().hex[:8]}"

    def tmux(*args: str) -> str:
        return subprocess.run([TMUX, "-L", server, *args], capture_output=True, text=True, check=True).stdout

    command = f"env HIVE_SOCKET={hived.socket} TERM=xterm-256color {HIVE_TUI}"
    tmux("new-session", "-d", "-s", "tui", "-x", "140", "-y", "40", command)
    try:
        screen = wait_for(
            lambda: (text := tmux("capture-pane", "-p", "-t", "tui")) and "on-screen" in text and text,
            timeout=30,
            interval=0.2,
            what="the agent's row on the terminal",
        )
        assert "connected to unix:" in screen
        row = next(line for line in screen.splitlines() if "on-screen" in line)
        assert "active" in row or "busy" in row
        assert "1 Agents" in screen and "4 Events" in screen and "q quit" in screen
        tmux("send-keys", "-t", "tui", "3")
        wait_for(lambda: "WORKFLOW" in tmux("capture-pane", "-p", "-t", "tui"), timeout=10, what="runs pane")
        tmux("send-keys", "-t", "tui", "5")
        limits = wait_for(
            lambda: (text := tmux("capture-pane", "-p", "-t", "tui")) and "llm-api" in text and text,
            timeout=10,
            what="the limit's row in the Limits pane",
        )
        assert "TOKENS" in limits and "WAITING" in limits and "CLOSED" in limits
        name, rate, tokens, concurrency, holders, waiting, closed = next(
            line.split() for line in limits.splitlines() if "llm-api" in line
        )
        assert (name, rate, concurrency, waiting, closed) == ("llm-api", "1/h", "-", "1", "-")
        assert tokens.endswith("/1") and float(tokens.partition("/")[0]) < 1
        tmux("send-keys", "-t", "tui", "6")
        node = hived.api("GET", "/nodes")["items"][0]["name"]  # on SQLite: this hived alone

        def node_row() -> tuple[str, list[str]] | None:  # (the pane draws its header before its rows)
            text = tmux("capture-pane", "-p", "-t", "tui")
            rows = [line.split() for line in text.splitlines() if line.split()[:1] == [node]]
            return (text, rows[0]) if "ADDRESS" in text and "agents: active" in text and rows else None

        nodes, row = wait_for(node_row, timeout=10, what="the node's row in the Nodes pane")
        assert "6 Nodes" in nodes and "agents: active 1" in nodes
        assert row[1:3] == ["(this)", "active"] and row[-2:] == ["on-screen", "-"]  # agents, heartbeat
        tmux("send-keys", "-t", "tui", "q")
        wait_for(
            lambda: (
                subprocess.run(
                    [TMUX, "-L", server, "has-session", "-t", "tui"], capture_output=True
                ).returncode
            ),
            timeout=10,
            what="hive-tui to quit on q",
        )
    finally:
        subprocess.run([TMUX, "-L", server, "kill-server"], capture_output=True)
