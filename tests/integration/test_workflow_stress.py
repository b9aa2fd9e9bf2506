"""Thirty runs of random DAGs at once, a fifth of attempts failing, and hived killed with -9 twice
in the middle: every run ends, every step's decision is consistent with its needs, and no step got
more than one task. And a fast chain through four kill -9s."""

from __future__ import annotations

import random
import sqlite3
import time
from typing import Any

from tests.helpers import Hived, wait_for

RUNS = 30
STEPS = 12
FINAL = ("succeeded", "failed", "cancelled")


def random_workflow(rng: random.Random) -> list[dict[str, Any]]:
    steps = []
    for i in range(STEPS):
        needs = sorted({f"s{rng.randrange(i)}" for _ in range(rng.randint(1, 2))}) if i else []
        step: dict[str, Any] = {
            "id": f"s{i}",
            "type": "flaky",
            "needs": needs,
            "payload": {"fail_rate": 0.2},
            "retry": {"max_attempts": 2, "initial": "10ms", "max": "20ms"},
            "continue_on_failure": rng.random() < 0.5,
        }
        if i and rng.random() < 0.2:
            step["when"] = f"steps.{needs[0]}.status == 'succeeded'"
        steps.append(step)
    return steps


def test_many_runs_with_failures_and_two_kill9s(hived: Hived) -> None:
    for i in range(3):
        hived.spawn(f"w{i}", {"python": "hivectl.agent.builtin:flaky"}, max_concurrency=8)
    rng = random.Random(11)
    for n in range(3):
        hived.api("POST", "/workflows", json={"name": f"dag{n}", "steps": random_workflow(rng)})
    run_ids = [hived.api("POST", f"/workflows/dag{i % 3}/execute", json={})["id"] for i in range(RUNS)]

    for done in (40, 150):  # kill -9 mid-way (steps done, runs still running), restart on the same state

        def midway(done: int = done) -> bool:
            status = hived.api("GET", "/status")
            return status["tasks"].get("completed", 0) > done and status["runs"].get("running", 0) > 0

        wait_for(midway, timeout=60, what=f"{done} steps done and runs still running")
        hived.kill9()
        hived.start()

    def all_final() -> list[dict[str, Any]] | None:
        runs = [hived.api("GET", f"/runs/{r}") for r in run_ids]
        return runs if all(r["status"] in FINAL for r in runs) else None

    runs = wait_for(all_final, timeout=240, interval=0.5, what="every run final")
    db = sqlite3.connect(hived.state_dir / "hive.db")
    try:
        for run in runs:
            steps = {s["id"]: s for s in run["steps"]}
            tasks = hived.api("GET", "/tasks", params={"run": run["id"], "limit": 100})["items"]
            assert sorted(t["id"] for t in tasks) == sorted(
                s["task_id"] for s in steps.values() if s["task_id"]
            )
            for step in steps.values():
                assert step["status"] in ("succeeded", "failed", "skipped", "cancelled"), step
                if step["status"] == "succeeded":
                    assert all(steps[n]["status"] in ("succeeded", "failed") for n in step["needs"])
            if run["status"] == "succeeded":
                assert all(s["status"] in ("succeeded", "failed", "skipped") for s in steps.values())
        twice = db.execute(
            "SELECT task_id FROM task_attempts WHERE outcome = 'completed' "
            "GROUP BY task_id HAVING count(*) > 1"
        ).fetchall()
        assert twice == []
    finally:
        db.close()
    assert sum(r["status"] == "succeeded" for r in runs) > 0


def test_kill9s_during_a_fast_chain_never_lose_or_repeat_a_step(hived: Hived) -> None:
    """A chain of quick steps, hived killed with -9 every ~0.3 s of its life (at random points of the
    cycle: a task's end committed and the engine's write not yet, the engine's write in flight, the
    next task being assigned...): the run ends, every step has one task, none completed twice."""
    hived.spawn("w", {"python": "hivectl.agent.builtin:act"}, max_concurrency=4)
    steps = [
        {"id": f"s{i}", "type": "t", "needs": [f"s{i - 1}"] if i else [], "payload": {"sleep": 0.05}}
        for i in range(50)
    ]
    hived.api("POST", "/workflows", json={"name": "quick", "steps": steps})
    run_id = hived.api("POST", "/workflows/quick/execute", json={})["id"]
    rng = random.Random(5)
    kills = 0
    while kills < 4 and hived.api("GET", f"/runs/{run_id}")["status"] not in FINAL:
        time.sleep(rng.uniform(0.1, 0.5))
        hived.kill9()
        hived.start()
        kills += 1
    run = wait_for(
        lambda: (r := hived.api("GET", f"/runs/{run_id}"))["status"] in FINAL and r,
        timeout=120,
        what="run final",
    )
    assert run["status"] == "succeeded", run["error"]
    tasks = hived.api("GET", "/tasks", params={"run": run_id, "limit": 100})["items"]
    assert sorted(t["id"] for t in tasks) == sorted(s["task_id"] for s in run["steps"])
    assert all(t["status"] == "completed" for t in tasks)
    db = sqlite3.connect(hived.state_dir / "hive.db")
    try:
        twice = db.execute(
            "SELECT task_id FROM task_attempts WHERE outcome = 'completed' "
            "GROUP BY task_id HAVING count(*) > 1"
        ).fetchall()
    finally:
        db.close()
    assert twice == []
    assert kills >= 2
