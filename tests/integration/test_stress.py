"""5,000 tasks, a fifth of attempts failing, agents killed at random meanwhile: every task ends as
its policy says, the counts add up, and no completion is recorded twice."""

from __future__ import annotations

import os
import random
import signal
import sqlite3

from tests.helpers import Hived, wait_for

N = 5000


def test_stress_with_failures_and_killed_agents(hived: Hived) -> None:
    for i in range(4):
        hived.spawn(
            f"stress-{i}",
            {"python": "hivectl.agent.builtin:flaky"},
            max_concurrency=16,
            heartbeat_interval="1s",
            restart={"initial_delay": "100ms", "max_restarts": 100},
        )
    rng = random.Random(7)
    for start in range(0, N, 500):
        # a few tasks may fail for good (max_attempts 4 at 20 % failures: about 1 in 600)
        tasks = [
            {
                "type": "stress",
                "payload": {"fail_rate": 0.2},
                "max_attempts": 4,
                "retry": {"initial": "10ms", "max": "50ms"},
            }
            for _ in range(500)
        ]
        hived.api("POST", "/tasks/batch", json={"tasks": tasks})
        if start % 1500 == 0:  # kill a random agent now and then
            victim = rng.choice(hived.api("GET", "/agents")["items"])
            if victim["pid"]:
                os.killpg(victim["pid"], signal.SIGKILL)

    def final() -> dict[str, int] | None:
        counts = hived.api("GET", "/status")["tasks"]
        return counts if counts.get("completed", 0) + counts.get("failed", 0) == N else None

    counts = wait_for(final, timeout=240, interval=0.5, what="all tasks final")
    assert counts.get("completed", 0) + counts.get("failed", 0) == N
    assert counts.get("failed", 0) < N * 0.02

    db = sqlite3.connect(hived.state_dir / "hive.db")
    try:
        twice = db.execute(
            "SELECT task_id FROM task_attempts WHERE outcome = 'completed' "
            "GROUP BY task_id HAVING count(*) > 1"
        ).fetchall()
        assert twice == []  # exactly-once recorded completion
        completed = db.execute(
            "SELECT count(DISTINCT task_id) FROM task_attempts WHERE outcome = 'completed'"
        )
        assert completed.fetchone()[0] == counts["completed"]
        failed_wrongly = db.execute("SELECT count(*) FROM tasks WHERE status = 'failed' AND attempts < 4")
        assert failed_wrongly.fetchone()[0] == 0  # only exhausted tasks fail
        lost = db.execute("SELECT count(*) FROM task_attempts WHERE reason IN ('agent_lost', 'lease_lost')")
        assert lost.fetchone()[0] >= 1  # the kills did hit running work
    finally:
        db.close()
