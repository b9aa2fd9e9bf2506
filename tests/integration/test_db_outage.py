"""PostgreSQL going away under a working hived: its database refuses connections and every session is
cut (as a server restart or a failover does), while agents run tasks. Meanwhile the API answers 503
with a clear message and changes nothing; afterwards hived carries on by itself, the same process,
and every task completes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import _pg_admin
from tests.helpers import Hived, wait_for

OUTAGE = 3.0  # seconds: the running tasks (2 s) end and the flaky one (1.5 s) is due meanwhile


@pytest.mark.pg
def test_hived_rides_out_a_database_outage(hived_factory: Any, pg_database: str) -> None:
    name = pg_database.rsplit("/", 1)[1]
    hived: Hived = hived_factory(db_url=pg_database)
    pid = hived.proc.pid  # type: ignore[union-attr]
    hived.spawn("worker", {"python": "hivectl.agent.builtin:act"}, capabilities=["act"], max_concurrency=3)
    ids = [
        hived.submit("act", requires=["act"], payload={"sleep": 2, "result": {"n": n}})["id"] for n in (0, 1)
    ]
    # One that fails at once and is due again during the outage, on the free slot: its assignment
    # cannot be committed then, and must go back to the queue rather than vanish.
    flaky = hived.submit(
        "act",
        requires=["act"],
        payload={"fail": "no luck"},
        max_attempts=2,
        retry={"initial": "1500ms", "jitter": 0},
    )["id"]
    wait_for(lambda: hived.task(flaky)["status"] == "retrying", what="the flaky task retrying")
    wait_for(lambda: hived.api("GET", "/tasks", params={"status": "running"})["total"] == 2, what="2 running")
    # And a workflow run whose first step ends while the database is away.
    steps = [
        {"id": "a", "type": "act", "requires": ["act"], "payload": {"sleep": 1, "result": {"v": 1}}},
        {
            "id": "b",
            "type": "act",
            "requires": ["act"],
            "needs": ["a"],
            "payload": {"x": "${{ steps.a.result.v }}"},
        },
    ]
    hived.api("POST", "/workflows", json={"name": "chain", "steps": steps})
    run = hived.api("POST", "/workflows/chain/execute", json={})["id"]
    wait_for(
        lambda: hived.api("GET", f"/runs/{run}")["steps"][0]["status"] == "running", what="step a running"
    )

    _pg_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    _pg_admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        refused = wait_for(
            lambda: (r := hived.client.post("/tasks", json={"type": "act"})).status_code != 201 and r,
            what="a submit refused during the outage",
        )
        assert refused.status_code == 503, refused.text
        assert "unavailable" in refused.json()["detail"] and "***" in refused.json()["detail"]
        assert hived.client.get("/readyz").status_code == 503
        assert hived.client.get("/healthz").status_code == 200  # alive, only not ready
        time.sleep(OUTAGE)  # the outage itself: the running tasks end and report meanwhile
    finally:
        _pg_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    wait_for(lambda: hived.client.get("/readyz").status_code == 200, what="ready again")
    done = [hived.wait_task(task_id, timeout=60) for task_id in ids]
    assert [t["status"] for t in done] == ["completed"] * 2
    assert sorted(t["result"]["n"] for t in done) == [0, 1]
    finished = wait_for(
        lambda: (r := hived.api("GET", f"/runs/{run}"))["status"] not in ("pending", "running") and r,
        60,
        what="the run finished",
    )
    assert finished["status"] == "succeeded" and finished["steps"][1]["result"] == {"x": 1}
    second = hived.wait_task(flaky, timeout=60)
    assert second["status"] == "failed" and second["attempts"] == 2 and "no luck" in second["error"]
    after = hived.wait_task(hived.submit("act", requires=["act"], payload={"result": {"n": 9}})["id"])
    assert after["status"] == "completed"
    assert hived.api("GET", "/tasks")["total"] == 6  # the refused submit left nothing behind
    assert hived.proc.poll() is None and hived.proc.pid == pid  # type: ignore[union-attr]
    assert "Traceback" not in hived.log()
    metrics = {
        sample.name: sample.value
        for family in text_string_to_metric_families(hived.api("GET", "/metrics"))
        for sample in family.samples
    }
    assert metrics["hive_database_unavailable_total"] > 0  # what an alert would watch
