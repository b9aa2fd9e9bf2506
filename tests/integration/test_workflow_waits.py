"""Waiting steps on a real hived: a `sleep: 3s` step and a signal wait outlive `kill -9` of hived (the
wake-up time and the wait are in the database), an approval with `timeout: 2s, on_timeout: reject`
ends rejected on its own, and `reject --rework` runs the named step again with the comment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.helpers import Hived, wait_for
from tests.integration.test_workflows import ACT, apply, run, steps_of, wait_run


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def until_steps(hived: Hived, run_id: str, **wanted: str) -> dict[str, Any]:
    """The run, once its steps named in `wanted` have those statuses."""

    def reached() -> dict[str, Any] | None:
        run = hived.api("GET", f"/runs/{run_id}")
        steps = steps_of(run)
        return run if all(steps[step]["status"] == status for step, status in wanted.items()) else None

    return wait_for(reached, 30, interval=0.05, what=f"steps {wanted}")


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def test_a_sleep_and_a_signal_wait_survive_kill9(hived_factory: Any, request: Any, db: str) -> None:
    db_url = None if db == "sqlite" else request.getfixturevalue("pg_database")
    hived = hived_factory(db_url=db_url)
    hived.spawn("w", ACT, max_concurrency=2)
    apply(
        hived,
        "durable-waits",
        steps=[
            {"id": "first", "type": "t", "payload": {"result": {"n": 1}}},
            {"id": "nap", "sleep": "3s", "needs": ["first"]},
            {"id": "green", "wait_for": {"signal": "ci", "timeout": "1h"}},
            {
                "id": "last",
                "type": "t",
                "needs": ["nap", "green"],
                "payload": {"result": {"sha": "${{ steps.green.result.sha }}"}},
            },
        ],
    )
    run_id = run(hived, "durable-waits")
    before = until_steps(hived, run_id, nap="waiting", green="waiting")
    nap = steps_of(before)["nap"]
    assert (when(nap["waiting_until"]) - when(nap["started_at"])).total_seconds() == 3
    assert nap["task_id"] is None and steps_of(before)["green"]["waiting_until"] is not None
    hived.kill9()
    hived.start()
    woke = until_steps(hived, run_id, nap="succeeded")
    assert when(steps_of(woke)["nap"]["finished_at"]) >= when(nap["waiting_until"])
    assert steps_of(woke)["green"]["status"] == "waiting"  # the signal wait is still there
    missing = hived.client.post(f"/runs/{run_id}/signals/deploy", json={"data": 1})
    assert missing.status_code == 409 and "it waits for 'ci'" in missing.json()["detail"]
    hived.api("POST", f"/runs/{run_id}/signals/ci", json={"data": {"sha": "abc123"}})
    done = wait_run(hived, run_id)
    assert done["status"] == "succeeded", done
    assert steps_of(done)["green"]["result"] == {"sha": "abc123"}
    assert steps_of(done)["last"]["result"] == {"sha": "abc123"}
    tasks = hived.api("GET", "/tasks", params={"limit": 100})["items"]
    assert len(tasks) == 2  # first and last: the waits held no task, nothing ran twice


def test_an_approval_timeout_rejects_and_a_rework_runs_the_step_again(hived: Hived) -> None:
    hived.spawn("w", ACT)
    apply(
        hived,
        "timed-gate",
        steps=[
            {"id": "go", "type": "approval", "timeout": "2s", "on_timeout": "reject"},
            {"id": "ship", "type": "t", "needs": ["go"]},
        ],
    )
    run_id = run(hived, "timed-gate")
    done = wait_run(hived, run_id, timeout=30)
    go = steps_of(done)["go"]
    assert done["status"] == "failed" and go["status"] == "failed"
    assert go["error"] == "rejected: no decision within 2s (on_timeout: reject)"
    assert go["decided_by"] == "timeout" and steps_of(done)["ship"]["status"] == "skipped"

    apply(
        hived,
        "reworked",
        steps=[
            {"id": "draft", "type": "t", "payload": {"result": {"feedback": "${{ steps.review.comment }}"}}},
            {"id": "review", "type": "approval", "needs": ["draft"]},
        ],
    )
    run_id = run(hived, "reworked")
    first = until_steps(hived, run_id, review="waiting")
    assert steps_of(first)["draft"]["result"] == {"feedback": None}
    body = {"comment": "add a changelog", "rework": "draft"}
    hived.api("POST", f"/runs/{run_id}/steps/review/reject", json=body)
    again = until_steps(hived, run_id, review="waiting")
    assert steps_of(again)["draft"]["result"] == {"feedback": "add a changelog"}
    assert steps_of(again)["draft"]["task_id"] != steps_of(first)["draft"]["task_id"]
    hived.api("POST", f"/runs/{run_id}/steps/review/approve")
    assert wait_run(hived, run_id)["status"] == "succeeded"


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def test_a_schedule_is_kept_across_kill9(hived_factory: Any, request: Any, db: str) -> None:
    db_url = None if db == "sqlite" else request.getfixturevalue("pg_database")
    hived = hived_factory(db_url=db_url)
    hived.spawn("w", ACT)
    apply(hived, "hourly-job", steps=[{"id": "job", "type": "t", "payload": {"sleep": 1}}])
    spec = {"name": "hourly", "workflow": "hourly-job", "cron": "0 * * * *", "overlap": "queue"}
    spec["catchup"] = "1h"
    assert hived.api("PUT", "/schedules/hourly", json=spec)["action"] == "created"
    fired = hived.api("POST", "/schedules/hourly/trigger")
    assert fired["action"] == "started"
    assert hived.api("POST", "/schedules/hourly/trigger")["action"] == "queued"  # the first still runs
    assert hived.api("POST", "/schedules/hourly/pause")["paused"] is True
    hived.kill9()
    hived.start()
    shown = hived.api("GET", "/schedules/hourly")
    assert shown["paused"] is True and shown["last_run_id"] == fired["id"] and shown["queued"] == 1
    assert shown["overlap"] == "queue" and shown["catchup"] == 3600
    wait_run(hived, fired["id"])
    assert hived.api("POST", "/schedules/hourly/resume")["paused"] is False
    runs = wait_for(
        lambda: len(r := hived.api("GET", "/runs", params={"workflow": "hourly-job"})["items"]) == 2 and r,
        what="the queued start once the first run ended",
    )
    assert {r["status"] for r in runs} <= {"pending", "running", "succeeded"}
    bad = hived.client.put("/schedules/hourly", json={**spec, "cron": "61 * * * *"})
    assert bad.status_code == 422 and "61 * * * *" in bad.text
    assert [s["name"] for s in hived.api("GET", "/schedules")["items"]] == ["hourly"]
