"""Item 7 of the hardening issue: agent logs stay bounded by `agent_log_max_bytes`, and rotating them
does not stall hived's API."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import Hived, wait_for

LOUD = """
import sys

def run(payload):
    line = "x" * 1023 + "\\n"
    for _ in range(payload["mib"] * 1024):
        sys.stdout.write(line)
    return {"printed_mib": payload["mib"]}
"""
BOUND = 1 << 20


def test_item7_a_handler_printing_a_lot_leaves_bounded_logs(
    hived_factory: Callable[..., Hived], tmp_path: Path
) -> None:
    config = tmp_path / "hived.yaml"
    config.write_text(f"kind: Daemon\nagent_log_max_bytes: {BOUND}\n")
    hived = hived_factory(extra_args=["--config", str(config)])
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "loud.py").write_text(LOUD)
    hived.spawn("loud", {"python": "loud:run"}, workdir=str(workdir))
    task = hived.submit("print", payload={"mib": 300})
    worst = 0.0
    while hived.task(task["id"])["status"] not in ("completed", "failed"):
        started = time.monotonic()
        assert hived.client.get("/healthz").status_code == 200
        worst = max(worst, time.monotonic() - started)
    assert hived.task(task["id"])["status"] == "completed"
    live = hived.state_dir / "agents" / "loud" / "agent-1.log"
    rotated = live.with_name("agent-1.log.1")
    wait_for(rotated.exists, timeout=5, what="hived to rotate the agent's log")
    assert rotated.stat().st_size <= BOUND
    assert live.stat().st_size <= 2 * BOUND + 4096
    assert worst < 1.0, f"/healthz took {worst:.2f}s while the log rotated"
