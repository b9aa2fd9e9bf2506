"""Workflow runs on a real hived with real agents: parallel branches, skips, outputs, failures,
approval gates, the run context, cancel, timeout, and kill -9 of hived in the middle of a run."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

import pytest

from hivectl.client import AsyncClient, Client
from hivectl.endpoint import Endpoint
from tests.helpers import Hived, wait_for

ACT = {"python": "hivectl.agent.builtin:act"}
FINAL = ("succeeded", "failed", "cancelled")


def apply(hived: Hived, name: str, steps: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return hived.api("POST", "/workflows", json={"name": name, "steps": steps, **fields})


def run(hived: Hived, name: str, **params: Any) -> str:
    return str(hived.api("POST", f"/workflows/{name}/execute", json={"params": params})["id"])


def wait_run(
    hived: Hived, run_id: str, states: tuple[str, ...] = FINAL, timeout: float = 30
) -> dict[str, Any]:
    return wait_for(
        lambda: (r := hived.api("GET", f"/runs/{run_id}"))["status"] in states and r,
        timeout,
        interval=0.05,
        what=f"run {run_id} in {states}",
    )


def steps_of(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in run["steps"]}


def test_parallel_branches_skips_and_outputs(hived: Hived) -> None:
    hived.spawn("w", ACT, max_concurrency=4)
    apply(
        hived,
        "fan",
        params={"n": 1, "label": "x"},
        steps=[
            {"id": "a", "type": "t", "payload": {"result": {"x": "${{ params.n }}", "ok": True}}},
            {"id": "left", "type": "t", "needs": ["a"], "payload": {"sleep": 0.5, "result": {"side": "l"}}},
            {"id": "right", "type": "t", "needs": ["a"], "payload": {"sleep": 0.5, "result": {"side": "r"}}},
            {"id": "never", "type": "t", "needs": ["a"], "when": "steps.a.result.ok == false"},
            {"id": "after_never", "type": "t", "needs": ["never"]},
            {
                "id": "join",
                "type": "t",
                "needs": ["left", "right"],
                "payload": {
                    "result": {
                        "sum": "${{ steps.a.result.x + 1 }}",
                        "text": "${{ params.label }}-${{ steps.left.result.side }}"
                        "${{ steps.right.result.side }}",
                    }
                },
            },
        ],
    )
    run_id = run(hived, "fan", n="41")  # a string for a numeric param is parsed as a number
    done = wait_run(hived, run_id)
    steps = steps_of(done)
    assert done["status"] == "succeeded", done
    assert done["params"] == {"n": 41, "label": "x"}
    assert steps["never"]["status"] == "skipped" and steps["never"]["task_id"] is None
    assert steps["after_never"]["status"] == "skipped"
    assert steps["join"]["result"] == {"sum": 42, "text": "x-lr"}
    # the two branches ran at the same time: each started before the other finished
    left, right = steps["left"], steps["right"]
    assert left["started_at"] < right["finished_at"] and right["started_at"] < left["finished_at"]
    assert all(s["agent_id"] for s in (left, right, steps["join"]))
    events = hived.api("GET", "/events", params={"follow": "false"})
    assert '"kind":"run.succeeded"' in events.replace(" ", "") and run_id in events


def test_failed_step_fails_the_run_and_cancels_running_steps(hived: Hived) -> None:
    hived.spawn("w", ACT, max_concurrency=2)
    apply(
        hived,
        "breaks",
        steps=[
            {"id": "slow", "type": "t", "payload": {"sleep": 30}},
            {
                "id": "bad",
                "type": "t",
                "payload": {"sleep": 0.2, "fail": "boom"},
                "retry": {"max_attempts": 1},
            },
            {"id": "after", "type": "t", "needs": ["bad"]},
        ],
    )
    run_id = run(hived, "breaks")
    done = wait_run(hived, run_id)
    steps = steps_of(done)
    assert done["status"] == "failed"
    assert "bad" in done["error"] and "boom" in done["error"]
    assert steps["bad"]["status"] == "failed"
    assert steps["slow"]["status"] == "cancelled"
    assert steps["after"]["status"] in ("skipped", "cancelled")
    assert hived.wait_task(steps["slow"]["task_id"])["status"] == "cancelled"


def test_continue_on_failure_lets_the_run_go_on(hived: Hived) -> None:
    hived.spawn("w", ACT)
    apply(
        hived,
        "tolerant",
        steps=[
            {
                "id": "lint",
                "type": "t",
                "payload": {"fail": "style"},
                "retry": {"max_attempts": 1},
                "continue_on_failure": True,
            },
            {
                "id": "report",
                "type": "t",
                "needs": ["lint"],
                "payload": {"result": {"lint": "${{ steps.lint.status }}"}},
            },
        ],
    )
    done = wait_run(hived, run(hived, "tolerant"))
    steps = steps_of(done)
    assert done["status"] == "succeeded"
    assert steps["lint"]["status"] == "failed" and "style" in steps["lint"]["error"]
    assert steps["report"]["result"] == {"lint": "failed"}


def test_approval_gate(hived: Hived) -> None:
    hived.spawn("w", ACT)
    apply(
        hived,
        "release",
        steps=[
            {"id": "build", "type": "t"},
            {"id": "ok", "type": "approval", "needs": ["build"], "payload": {"text": "ship it?"}},
            {
                "id": "ship",
                "type": "t",
                "needs": ["ok"],
                "payload": {"result": {"by": "${{ steps.ok.result.by }}"}},
            },
        ],
    )
    run_id = run(hived, "release")
    waiting = wait_for(
        lambda: (r := hived.api("GET", f"/runs/{run_id}")) and steps_of(r)["ok"]["status"] == "waiting" and r,
        what="the gate waiting",
    )
    assert waiting["status"] == "running" and steps_of(waiting)["ship"]["status"] == "pending"
    hived.api("POST", f"/runs/{run_id}/steps/ship/approve", expect=409)  # not a waiting gate
    hived.api("POST", f"/runs/{run_id}/steps/ok/approve", json={"by": "alice"})
    hived.api("POST", f"/runs/{run_id}/steps/ok/approve", json={"by": "bob"}, expect=409)
    done = wait_run(hived, run_id)
    assert done["status"] == "succeeded"
    assert steps_of(done)["ship"]["result"] == {"by": "alice"}
    assert steps_of(done)["ok"]["decided_by"] == "alice"

    rejected = run(hived, "release")
    wait_for(lambda: steps_of(hived.api("GET", f"/runs/{rejected}"))["ok"]["status"] == "waiting")
    hived.api("POST", f"/runs/{rejected}/steps/ok/reject", json={"by": "carol", "comment": "not today"})
    done = wait_run(hived, rejected)
    assert done["status"] == "failed" and "rejected by carol: not today" in done["error"]
    assert steps_of(done)["ship"]["status"] in ("skipped", "cancelled")


def test_run_context_compare_and_set(hived: Hived) -> None:
    hived.spawn("w", ACT)
    apply(hived, "ctx", steps=[{"id": "gate", "type": "approval"}])
    run_id = run(hived, "ctx")
    base = f"/runs/{run_id}/context"
    hived.api("GET", f"{base}/lock", expect=404)
    first = hived.api("PUT", f"{base}/lock", json={"value": {"owner": "a"}, "expected_version": 0})
    assert first["version"] == 1
    hived.api("PUT", f"{base}/lock", json={"value": {"owner": "b"}, "expected_version": 0}, expect=409)
    second = hived.api("PUT", f"{base}/lock", json={"value": {"owner": "a", "n": 2}, "expected_version": 1})
    assert second["version"] == 2
    stale = hived.client.put(f"{base}/lock", json={"value": {"owner": "c"}, "expected_version": 1})
    assert stale.status_code == 409 and "version 2" in stale.json()["detail"]
    assert hived.api("GET", f"{base}/lock")["value"] == {"owner": "a", "n": 2}
    hived.api("PUT", f"{base}/count", json={"value": 7})  # unconditional
    assert [e["key"] for e in hived.api("GET", base)] == ["count", "lock"]
    hived.api("GET", "/runs/00000000-0000-0000-0000-000000000000/context", expect=404)


def test_run_id_reaches_the_task_environment(hived: Hived) -> None:
    probe = "import json, os; print(json.dumps({'run': os.environ.get('HIVE_RUN_ID')}))"
    hived.spawn("envy", {"exec": [sys.executable, "-c", probe]})
    apply(hived, "env", steps=[{"id": "probe", "type": "t"}])
    run_id = run(hived, "env")
    done = wait_run(hived, run_id)
    assert steps_of(done)["probe"]["result"] == {"run": run_id}


def test_cancel_and_timeout(hived: Hived) -> None:
    hived.spawn("w", ACT, max_concurrency=2)
    apply(hived, "long", steps=[{"id": "wait", "type": "t", "payload": {"sleep": 60}}])
    run_id = run(hived, "long")
    wait_for(lambda: steps_of(hived.api("GET", f"/runs/{run_id}"))["wait"]["status"] == "running")
    cancelled = hived.api("POST", f"/runs/{run_id}/cancel")
    assert cancelled["status"] == "cancelled"
    assert steps_of(cancelled)["wait"]["status"] == "cancelled"
    assert hived.wait_task(steps_of(cancelled)["wait"]["task_id"])["status"] == "cancelled"
    hived.api("POST", f"/runs/{run_id}/cancel", expect=409)

    apply(hived, "late", timeout="1s", steps=[{"id": "wait", "type": "t", "payload": {"sleep": 60}}])
    done = wait_run(hived, run(hived, "late"))
    assert done["status"] == "failed" and "timed out after 1s" in done["error"]
    assert hived.wait_task(steps_of(done)["wait"]["task_id"])["status"] == "cancelled"


def test_versions_params_and_bad_requests(hived: Hived) -> None:
    steps = [{"id": "a", "type": "t"}]
    assert apply(hived, "v", steps=steps, params={"n": 1})["action"] == "created"
    assert apply(hived, "v", steps=steps, params={"n": 1})["action"] == "unchanged"
    changed = apply(hived, "v", steps=steps, params={"n": 2})
    assert changed["action"] == "updated" and changed["version"] == 2
    assert hived.api("GET", "/workflows/v", params={"version": 1})["params"] == {"n": 1}
    assert [w["version"] for w in hived.api("GET", "/workflows")["items"]] == [2]
    bad = hived.client.post("/workflows/v/execute", json={"params": {"m": 1}})
    assert bad.status_code == 422 and "unknown param 'm'" in bad.json()["detail"]
    bad = hived.client.post("/workflows/v/execute", json={"params": {"n": "three"}})
    assert bad.status_code == 422 and "'three' is not an integer" in bad.json()["detail"]
    cycle = hived.client.post(
        "/workflows",
        json={
            "name": "c",
            "steps": [{"id": "a", "type": "t", "needs": ["b"]}, {"id": "b", "type": "t", "needs": ["a"]}],
        },
    )
    assert cycle.status_code == 422 and "dependency cycle: a -> b -> a" in cycle.json()["detail"]
    hived.api("POST", "/workflows/nope/execute", expect=404)
    assert hived.api("GET", "/runs")["total"] == 0  # nothing was started by the bad requests


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def test_kill9_of_hived_mid_run_resumes_without_rerunning_steps(
    hived_factory: Any, request: Any, db: str
) -> None:
    db_url = None if db == "sqlite" else request.getfixturevalue("pg_database")
    hived = hived_factory(db_url=db_url)
    hived.spawn("w", ACT, max_concurrency=2)
    apply(
        hived,
        "durable",
        steps=[
            {"id": "first", "type": "t", "payload": {"result": {"n": 1}}},
            {"id": "middle", "type": "t", "needs": ["first"], "payload": {"sleep": 2}},
            {"id": "gate", "type": "approval", "needs": ["first"]},
            {
                "id": "last",
                "type": "t",
                "needs": ["middle", "gate"],
                "payload": {"result": {"n": "${{ steps.first.result.n + 1 }}"}},
            },
        ],
    )
    run_id = run(hived, "durable")
    before = wait_for(
        lambda: (
            (r := hived.api("GET", f"/runs/{run_id}"))
            and steps_of(r)["middle"]["status"] == "running"
            and steps_of(r)["gate"]["status"] == "waiting"
            and r
        ),
        what="middle running and the gate waiting",
    )
    first_task = steps_of(before)["first"]["task_id"]
    hived.kill9()
    hived.start()
    hived.api("POST", f"/runs/{run_id}/steps/gate/approve")
    done = wait_run(hived, run_id)
    steps = steps_of(done)
    assert done["status"] == "succeeded", done
    assert steps["first"]["task_id"] == first_task
    assert steps["last"]["result"] == {"n": 2}
    tasks = hived.api("GET", "/tasks", params={"limit": 100})["items"]
    assert len(tasks) == 3  # first, middle, last: none created twice
    assert hived.task(first_task)["attempts"] == 1


@pytest.mark.pg
def test_a_failed_engine_write_is_recovered_from_the_database(hived_factory: Any, pg_database: str) -> None:
    """A write of the engine fails (here: a constraint an admin added refuses it). hived reads the
    run again and retries; once the database accepts writes again the run finishes, no step twice."""
    hived = hived_factory(db_url=pg_database)
    hived.spawn("w", ACT, max_concurrency=4)
    steps = [
        {"id": f"s{i}", "type": "t", "needs": [f"s{i - 1}"] if i else [], "payload": {"sleep": 0.3}}
        for i in range(4)
    ]
    apply(hived, "chain", steps=steps)
    run_id = run(hived, "chain")
    wait_for(lambda: steps_of(hived.api("GET", f"/runs/{run_id}"))["s1"]["status"] == "running")
    admin = pg_database.replace("postgresql+asyncpg://", "postgresql://")
    _pg_admin_on(
        admin, "ALTER TABLE run_steps ADD CONSTRAINT no_success CHECK (status <> 'succeeded') NOT VALID"
    )
    wait_for(lambda: "a write failed" in hived.log(), timeout=30, what="the engine's failed write")
    assert steps_of(hived.api("GET", f"/runs/{run_id}"))["s1"]["status"] == "running"  # the truth kept
    _pg_admin_on(admin, "ALTER TABLE run_steps DROP CONSTRAINT no_success")
    done = wait_run(hived, run_id, timeout=60)
    assert done["status"] == "succeeded", done
    assert len(hived.api("GET", "/tasks", params={"limit": 100})["items"]) == 4


def _pg_admin_on(dsn: str, statement: str) -> None:
    import asyncio

    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(go())


@pytest.mark.pg
def test_runs_survive_the_database_dropping_hiveds_connections(hived_factory: Any, pg_database: str) -> None:
    """PostgreSQL restarts or a proxy cuts connections: writes fail for a moment; no run is stuck."""
    from tests.conftest import _pg_admin

    hived = hived_factory(db_url=pg_database)
    hived.spawn("w", ACT, max_concurrency=4)
    steps = [{"id": "s0", "type": "t", "payload": {"sleep": 0.3}}]
    steps += [
        {"id": f"s{i}", "type": "t", "needs": [f"s{i - 1}"], "payload": {"sleep": 0.3}} for i in range(1, 8)
    ]
    apply(hived, "chain", steps=steps)
    run_id = run(hived, "chain")
    database = pg_database.rsplit("/", 1)[1]
    for _ in range(3):
        wait_for(lambda: hived.api("GET", f"/runs/{run_id}")["status"] == "running")
        _pg_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )
    done = wait_run(hived, run_id, timeout=60)
    assert done["status"] == "succeeded", done
    assert all(s["status"] == "succeeded" for s in done["steps"])
    assert len(hived.api("GET", "/tasks", params={"limit": 100})["items"]) == 8


def test_the_long_poll_with_since_answers_at_a_change_not_at_its_deadline(hived: Hived) -> None:
    apply(
        hived,
        "gated",
        steps=[{"id": "ok", "type": "approval"}, {"id": "after", "type": "approval", "needs": ["ok"]}],
    )
    run_id = run(hived, "gated")
    seen = wait_run(hived, run_id, states=("running",))
    revision = seen["revision"]
    began = time.monotonic()  # nothing changes: the deadline answers, with the same revision
    assert (
        hived.api("GET", f"/runs/{run_id}", params={"wait": 0.5, "since": revision})["revision"] == revision
    )
    assert time.monotonic() - began >= 0.45
    began = time.monotonic()  # a revision not current answers at once
    assert (
        hived.api("GET", f"/runs/{run_id}", params={"wait": 30, "since": revision + 7})["revision"]
        == revision
    )

    answers: list[tuple[float, dict[str, Any]]] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            (time.monotonic(), hived.api("GET", f"/runs/{run_id}", params={"wait": 30, "since": revision}))
        )
    )
    waiting.start()
    time.sleep(0.3)
    assert not answers  # held: nothing changed yet
    approved = time.monotonic()
    hived.api("POST", f"/runs/{run_id}/steps/ok/approve")
    waiting.join(10)
    ((answered, moved),) = answers
    assert answered - approved < 2.0  # at the change, not at the deadline 30 s away
    assert moved["revision"] > revision
    assert [s["status"] for s in moved["steps"]] == ["succeeded", "waiting"]
    hived.api("GET", f"/runs/{run_id}", params={"since": -1}, expect=422)


def chain_transitions(runs: list[tuple[float, Any]]) -> tuple[dict[str, list[str]], list[float]]:
    """Each step's statuses in the order the watch saw them, and the delay of each step's start and
    end as seen (receipt time minus the step's own time)."""
    statuses: dict[str, list[str]] = {}
    lags = []
    for seen_at, current in runs:
        for step in current.steps:
            if statuses.setdefault(step.id, []) == [] or statuses[step.id][-1] != step.status:
                statuses[step.id].append(step.status)
                at = step.finished_at if step.status == "succeeded" else step.started_at
                if at is not None and step.status in ("running", "succeeded"):
                    lags.append(seen_at - at.timestamp())
    return statuses, lags


CHAIN3 = [
    {"id": "a", "type": "t", "payload": {"sleep": 1.2}},
    {"id": "b", "type": "t", "needs": ["a"], "payload": {"sleep": 1.2}},
    {"id": "c", "type": "t", "needs": ["b"], "payload": {"sleep": 1.2}},
]


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_watch_run_sees_every_step_transition_of_a_chain_as_it_happens(hived: Hived, flavour: str) -> None:
    hived.spawn("w", ACT, max_concurrency=2)
    apply(hived, "chain3", steps=CHAIN3)
    run_id = run(hived, "chain3")
    endpoint = Endpoint(socket=hived.socket)
    if flavour == "sync":
        with Client(endpoint) as client:
            seen = [(time.time(), r) for r in client.watch_run(run_id, timeout=60)]
    else:

        async def watch() -> list[tuple[float, Any]]:
            async with AsyncClient(endpoint) as client:
                return [(time.time(), r) async for r in client.watch_run(run_id, timeout=60)]

        seen = asyncio.run(watch())
    statuses, lags = chain_transitions(seen)
    assert seen[-1][1].status == "succeeded"
    assert statuses["c"] == ["pending", "running", "succeeded"]
    assert statuses["b"] == ["pending", "running", "succeeded"]
    assert statuses["a"][-2:] == ["running", "succeeded"]
    # Each change shows as it happens: one answer per change (steps' ends, starts, assignments), no
    # polling; a change seen only at a long-poll's deadline (20 s) would be far behind.
    assert len(lags) == 6 and max(lags) < 5, lags
    assert len(seen) < 15
