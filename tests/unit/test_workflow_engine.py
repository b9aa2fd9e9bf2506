"""The workflow engine in this process, with the real dispatcher and store and a FakeClock: fan-out,
`when`, failures, approval gates, run timeouts, and a run resumed by a new engine (hived restarted)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from hived.events import TaskEnded
from hived.model.schemas import Lease
from hived.model.workflow import WorkflowSpec
from hived.store import workflows as store
from hived.workflows.engine import WorkflowEngine
from tests.unit.inprocess import Core, done, result


async def start(hive: Core, spec: dict[str, Any], params: dict[str, Any] | None = None) -> str:
    """Store the template and start a run of it; returns once the run's first moves are made."""
    definition = WorkflowSpec.model_validate(spec).definition()
    now = hive.clock.now()
    row = {
        "id": str(uuid.uuid4()),
        "name": spec["name"],
        "version": 1,
        "definition": definition,
        "status": "active",
        "created_at": now,
        "updated_at": now,
    }
    await hive.db.write(lambda c: store.insert_workflow(c, row))
    run_id = await hive.engine.start_run(row, params or {})
    await hive.engine.idle()
    return run_id


async def state(hive: Core, run_id: str) -> tuple[str, dict[str, str]]:
    """The run's status and its steps' statuses, as committed."""

    def read(conn: Any) -> tuple[str, dict[str, str]]:
        (run,) = store.run_by_id(conn, run_id)
        return run["status"], {s["step_id"]: s["status"] for s in store.run_steps(conn, [run_id])[run_id]}

    await hive.db.write(lambda c: None)  # after every queued write
    return await hive.db.read(read)


async def run_row(hive: Core, run_id: str) -> dict[str, Any]:
    (row,) = await hive.db.read(lambda c: store.run_by_id(c, run_id))
    return row


def types(leases: list[Lease]) -> list[str]:
    return sorted(lease.type for lease in leases)


async def finish(hive: Core, leases: list[Lease], ok: bool = True, agent: str = "w") -> None:
    await hive.dispatcher.report(agent, [result(lease, ok=ok) for lease in leases])
    await hive.engine.idle()


async def new_engine(hive: Core) -> WorkflowEngine:
    """Another engine in place of the stopped one (hived started again); not loaded yet."""
    engine = WorkflowEngine(
        hive.db, hive.events, hive.new_task_row, hive.accepted, hive.dispatcher.cancel, hive.clock
    )
    hive.events.subscribe(TaskEnded, engine.task_ended)
    hive.engine = engine
    return engine


DIAMOND = {
    "name": "diamond",
    "steps": [
        {"id": "build", "type": "build"},
        {"id": "unit", "type": "unit", "needs": ["build"], "payload": {"from": "${{ steps.build.result }}"}},
        {"id": "lint", "type": "lint", "needs": ["build"]},
        {"id": "ship", "type": "ship", "needs": ["unit", "lint"]},
    ],
}


async def test_steps_fan_out_when_their_needs_succeed(hive: Core) -> None:
    hive.dispatcher.attach("w", [], 10)
    run_id = await start(hive, DIAMOND)
    build = await hive.lease("w")
    assert types(build) == ["build"]
    await finish(hive, build)
    both = await hive.lease("w")
    assert types(both) == ["lint", "unit"]  # side by side
    unit = next(lease for lease in both if lease.type == "unit")
    assert unit.payload == {"from": {"done": True}}  # the output of build
    assert unit.env == {"HIVE_RUN_ID": run_id}
    await finish(hive, both)
    await finish(hive, await hive.lease("w"))
    assert await state(hive, run_id) == (
        "succeeded",
        {"build": "succeeded", "unit": "succeeded", "lint": "succeeded", "ship": "succeeded"},
    )
    assert run_id not in hive.engine.runs


@pytest.mark.parametrize(
    ("ship", "expected"),
    [
        (True, {"check": "succeeded", "deploy": "succeeded", "announce": "succeeded"}),
        (False, {"check": "succeeded", "deploy": "skipped", "announce": "skipped"}),
    ],
)
async def test_a_false_when_skips_the_step_and_what_needs_it(
    hive: Core, ship: bool, expected: dict[str, str]
) -> None:
    spec = {
        "name": "gated",
        "params": {"ship": False},
        "steps": [
            {"id": "check", "type": "check"},
            {"id": "deploy", "type": "deploy", "needs": ["check"], "when": "params.ship == true"},
            {"id": "announce", "type": "announce", "needs": ["deploy"]},
        ],
    }
    run_id = await start(hive, spec, {"ship": ship})
    ran = await hive.burst(done)
    assert ran == sum(status == "succeeded" for status in expected.values())
    assert await state(hive, run_id) == ("succeeded", expected)


@pytest.mark.parametrize(
    ("continue_on_failure", "run_status", "lint_status"),
    [(False, "failed", "cancelled"), (True, "succeeded", "succeeded")],
)
async def test_a_failed_step_fails_the_run_unless_it_may_fail(
    hive: Core, continue_on_failure: bool, run_status: str, lint_status: str
) -> None:
    spec = {
        "name": "fails",
        "steps": [
            {
                "id": "unit",
                "type": "unit",
                "retry": {"max_attempts": 1},
                "continue_on_failure": continue_on_failure,
            },
            {"id": "lint", "type": "lint"},
        ],
    }
    hive.dispatcher.attach("w", [], 10)
    run_id = await start(hive, spec)
    leases = await hive.lease("w")
    unit = [lease for lease in leases if lease.type == "unit"]
    lint = [lease for lease in leases if lease.type == "lint"]
    await finish(hive, unit, ok=False)
    if not continue_on_failure:
        assert (await hive.task(lint[0].task_id))["status"] == "cancelled"  # the run took it back
    await finish(hive, lint)
    assert await state(hive, run_id) == (run_status, {"unit": "failed", "lint": lint_status})
    if run_status == "failed":
        assert (await run_row(hive, run_id))["error"] == "step 'unit' failed: boom"


@pytest.mark.parametrize(
    ("approve", "run_status", "deploy"), [(True, "succeeded", "succeeded"), (False, "failed", "skipped")]
)
async def test_an_approval_gate_waits_for_a_decision(
    hive: Core, approve: bool, run_status: str, deploy: str
) -> None:
    spec = {
        "name": "gate",
        "steps": [
            {"id": "ok", "type": "approval", "payload": {"ask": "ship?"}},
            {"id": "deploy", "type": "deploy", "needs": ["ok"]},
        ],
    }
    run_id = await start(hive, spec)
    assert await hive.burst(done) == 0  # nothing to run while it waits
    assert await state(hive, run_id) == ("running", {"ok": "waiting", "deploy": "pending"})
    await hive.engine.decide(run_id, "ok", approve=approve, by="ops", comment=None)
    await hive.burst(done)
    status, steps = await state(hive, run_id)
    assert (status, steps["deploy"]) == (run_status, deploy)
    assert steps["ok"] == ("succeeded" if approve else "failed")


async def test_a_run_past_its_timeout_fails_on_the_clock(hive: Core) -> None:
    spec = {"name": "slow", "timeout": "60s", "steps": [{"id": "long", "type": "long"}]}
    hive.dispatcher.attach("w", [], 10)
    hive.engine.start()
    run_id = await start(hive, spec)
    (lease,) = await hive.lease("w")
    await hive.clock.until_sleeping()
    await hive.clock.advance(59.9)
    assert hive.engine.check_timeouts() == 0
    await hive.clock.advance(0.1)  # the timeouts loop wakes at the deadline
    await hive.engine.idle()
    assert await state(hive, run_id) == ("failed", {"long": "cancelled"})
    assert (await run_row(hive, run_id))["error"] == "run timed out after 60s"
    assert (await hive.task(lease.task_id))["status"] == "cancelled"


async def test_a_new_engine_resumes_the_run_and_counts_what_ended_meanwhile(hive: Core) -> None:
    hive.dispatcher.attach("w", [], 10)
    run_id = await start(hive, DIAMOND)
    build = await hive.lease("w")
    await hive.engine.stop()  # hived goes down; the build ends while no engine listens
    hive.events.unsubscribe(TaskEnded, hive.engine.task_ended)
    await finish(hive, build)

    engine = await new_engine(hive)
    assert await engine.load() == 1
    await engine.idle()
    leases = await hive.lease("w")
    assert types(leases) == ["lint", "unit"]
    await finish(hive, leases)
    await hive.burst(done, agent_id="w")
    assert (await state(hive, run_id))[0] == "succeeded"
