"""Nodes on one host: two hived on one PostgreSQL, each with its own socket and state dir. What one
node is asked reaches the other: agents placed on it, tasks it runs, events, workflow runs whose
driver is killed; and what must be refused is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, Hived, wait_for

pytestmark = pytest.mark.pg


def agent(name: str, node: str, folder: Path, concurrency: int = 4) -> dict[str, Any]:
    return {
        "name": name,
        "node": node,
        "max_concurrency": concurrency,
        "env": {"PYTHONPATH": str(folder), "NODE": node},
        "handler": {"python": "where:run"},
    }


@pytest.fixture
def two(hived_factory: Callable[..., Hived], pg_database: str, tmp_path: Path) -> tuple[Hived, Hived]:
    (tmp_path / "where.py").write_text(
        "import os, time\n\ndef run(payload):\n"
        "    time.sleep(payload.get('s', 0))\n    return {'node': os.environ['NODE']}\n"
    )
    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\nnode_timeout: 3s\n")
    a = hived_factory(db_url=pg_database, extra_args=["--node", "alpha", "--config", str(config)])
    b = hived_factory(db_url=pg_database, extra_args=["--node", "beta", "--config", str(config)])
    return a, b


def active(node: Hived) -> set[str]:
    return {a["name"] for a in node.api("GET", "/agents")["items"] if a["status"] == "active"}


def test_a_task_submitted_to_one_node_runs_on_the_other_and_both_see_it_end(
    two: tuple[Hived, Hived], tmp_path: Path
) -> None:
    a, b = two
    a.api("PUT", "/agents/wb", json=agent("wb", "beta", tmp_path))  # placed on beta, applied to alpha
    wait_for(lambda: "wb" in active(a) and "wb" in active(b), 30, what="wb active, seen by both")
    nodes = {n["name"]: n["status"] for n in a.api("GET", "/nodes")["items"]}
    assert nodes == {"alpha": "active", "beta": "active"}
    assert b.api("GET", "/nodes/beta")["agents"] == ["wb"]
    # `--wait` on alpha hears of an end on beta (the relayed task end).
    out = subprocess.run(
        [sys.executable, "-m", "hivectl.cli.main", "task", "submit", "t", "--wait", "-o", "json"],
        env={**a.env, "HIVE_SOCKET": str(a.socket)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    task = json.loads(out.stdout)
    assert task["status"] == "completed" and task["result"] == {"node": "beta"}
    # /events on alpha carries beta's events.
    def relayed() -> bool:  # the task ended on beta; beta's agent changed status there
        lines = a.client.get("/events", params={"since": 0, "follow": "false"}, timeout=10).text.splitlines()
        ended = any(task["id"] in line and '"kind": "task.completed"' in line for line in lines)
        return ended and any('"kind": "agent.status"' in line and '"node": "beta"' in line for line in lines)

    assert wait_for(relayed, 10, what="beta's events on alpha's /events")


def test_a_workflow_run_moves_to_the_other_node_when_its_driver_is_killed(
    two: tuple[Hived, Hived], tmp_path: Path
) -> None:
    a, b = two
    b.api("PUT", "/agents/wb", json=agent("wb", "beta", tmp_path))
    wait_for(lambda: "wb" in active(b), 30, what="wb active")
    steps = [
        {"id": "one", "type": "t", "payload": {"s": 2}},
        {"id": "two", "type": "t", "needs": ["one"]},
    ]
    a.api("POST", "/workflows", json={"name": "chain", "steps": steps})
    run_id = a.api("POST", "/workflows/chain/execute", json={})["id"]  # alpha drives it
    wait_for(lambda: b.api("GET", f"/runs/{run_id}")["status"] == "running", 30, what="run running")
    a.kill9()
    def done() -> Any:
        return (r := b.api("GET", f"/runs/{run_id}"))["status"] == "succeeded" and r

    run = wait_for(done, 40, what="the run finished, driven by beta")
    assert [s["status"] for s in run["steps"]] == ["succeeded", "succeeded"]
    assert "driven by this node now" in b.log()


def test_bad_input_two_nodes_of_one_name_and_an_agent_on_an_unknown_node(
    two: tuple[Hived, Hived], hived_factory: Callable[..., Hived], pg_database: str, tmp_path: Path
) -> None:
    a, _b = two
    again = hived_factory(db_url=pg_database, extra_args=["--node", "alpha"], start=False)
    args = [sys.executable, "-m", "hived.main", "--socket", str(again.socket), "--node", "alpha"]
    out = subprocess.run([*args, "--db", pg_database], env=again.env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "as node 'alpha'" in out.stderr and "hived pid" in out.stderr  # names the first
    a.api("PUT", "/agents/nowhere", json=agent("nowhere", "gamma", tmp_path))  # accepted
    shown = a.api("GET", "/agents/nowhere")
    assert shown["status"] == "unscheduled" and "gamma" in shown["status_reason"]
    drained = a.api("POST", "/nodes/beta/drain")
    assert drained["status"] == "draining"
    assert a.api("POST", "/nodes/beta/uncordon")["status"] == "active"
    assert a.client.get("/nodes/nosuch").status_code == 404
