"""workflow: steps in this process (real dispatcher and store, FakeClock): the step waits for its
child run and takes its outputs, the runs are linked both ways, a failed child fails the step, a
cancelled parent cancels its child, and a parent resumed by a new engine finds its child."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from hived.events import TaskEnded
from hived.model.workflow import WorkflowSpec
from hived.store import workflow_links as links
from hived.store import workflows as store
from tests.unit.inprocess import Core, done
from tests.unit.test_workflow_engine import finish, new_engine, run_row, start, state

CHILD = {
    "name": "lint-and-test",
    "params": {"path": None},
    "steps": [
        {"id": "lint", "type": "lint", "payload": {"path": "${{ params.path }}"}},
        {"id": "test", "type": "test", "needs": ["lint"]},
    ],
    "outputs": {"linted": "${{ steps.lint.result.echo.path }}", "tested": "${{ steps.test.status }}"},
}
PARENT = {
    "name": "parent",
    "params": {"path": "src"},
    "steps": [
        {"id": "child", "workflow": "lint-and-test", "params": {"path": "${{ params.path }}/app"}},
        {"id": "after", "type": "after", "needs": ["child"], "payload": {"got": "${{ steps.child.result }}"}},
    ],
    "outputs": {"child": "${{ steps.child.result }}"},
}


async def store_workflow(hive: Core, spec: dict[str, Any]) -> None:
    now = hive.clock.now()
    row = {
        "id": str(uuid.uuid4()),
        "name": spec["name"],
        "version": 1,
        "definition": WorkflowSpec.model_validate(spec).definition(),
        "status": "active",
        "created_at": now,
        "updated_at": now,
    }
    await hive.db.write(lambda c: store.insert_workflow(c, row))


async def settle(hive: Core) -> None:
    """Until the engine and its background work (starting and settling child runs) are done."""
    for _ in range(10):
        await hive.engine.idle()
        await asyncio.gather(*list(hive.engine._tasks))
        await asyncio.sleep(0)  # their done callbacks run
        await hive.engine.idle()


async def drive(hive: Core) -> int:
    """Run every task of the runs (their children's too) to its end; returns how many ran."""
    ran = 0
    while True:
        await settle(hive)
        if not (now := await hive.burst(done)):
            return ran
        ran += now


async def child_of(hive: Core, run_id: str) -> dict[str, Any]:
    await hive.db.write(lambda c: None)
    found = await hive.db.read(lambda c: links.child_run(c, run_id, "child"))
    assert found is not None
    return found


async def test_a_workflow_step_waits_for_its_child_and_takes_its_outputs(hive: Core) -> None:
    await store_workflow(hive, CHILD)
    run_id = await start(hive, PARENT, {"path": "src"})
    await settle(hive)
    child = await child_of(hive, run_id)
    assert child["params"] == {"path": "src/app"} and child["parent_step"] == "child"
    assert await drive(hive) == 3  # lint and test in the child, then after
    assert await state(hive, child["id"]) == ("succeeded", {"lint": "succeeded", "test": "succeeded"})
    outputs = {"linted": "src/app", "tested": "succeeded"}
    assert (await run_row(hive, child["id"]))["outputs"] == outputs
    steps = (await hive.db.read(lambda c: store.run_steps(c, [run_id])))[run_id]
    assert steps[0]["child_run_id"] == child["id"] and steps[0]["result"] == outputs
    assert await state(hive, run_id) == ("succeeded", {"child": "succeeded", "after": "succeeded"})
    assert (await run_row(hive, run_id))["outputs"] == {"child": outputs}


async def test_a_failed_child_fails_the_step(hive: Core) -> None:
    await store_workflow(hive, CHILD)
    hive.dispatcher.attach("w", [], 10)
    run_id = await start(hive, PARENT, {"path": "src"})
    await settle(hive)
    await finish(hive, await hive.lease("w"), ok=False)  # lint fails its three attempts
    for _ in range(2):
        await hive.clock.advance(600)
        await finish(hive, await hive.lease("w"), ok=False)
    await settle(hive)
    child = await child_of(hive, run_id)
    assert child["status"] == "failed"
    status, steps = await state(hive, run_id)
    assert (status, steps) == ("failed", {"child": "failed", "after": "skipped"})
    error = (await run_row(hive, run_id))["error"]
    assert error.startswith(f"step 'child' failed: workflow 'lint-and-test' run {child['id'][:8]} failed")


async def test_cancelling_the_parent_cancels_the_child(hive: Core) -> None:
    await store_workflow(hive, CHILD)
    hive.dispatcher.attach("w", [], 10)
    run_id = await start(hive, PARENT, {"path": "src"})
    await settle(hive)
    (lint,) = await hive.lease("w")
    await hive.engine.cancel(run_id)
    await settle(hive)
    child = await child_of(hive, run_id)
    assert child["status"] == "cancelled"
    assert (await hive.task(lint.task_id))["status"] == "cancelled"
    assert (await state(hive, run_id))[0] == "cancelled"


async def test_an_unknown_child_workflow_fails_the_step_at_run_time(hive: Core) -> None:
    run_id = await start(hive, PARENT, {"path": "src"})
    await settle(hive)
    assert await state(hive, run_id) == ("failed", {"child": "failed", "after": "skipped"})
    error = (await run_row(hive, run_id))["error"]
    assert "cannot start workflow 'lint-and-test': workflow 'lint-and-test' not found" in error


async def test_a_new_engine_finds_the_child_the_parent_had_started(hive: Core) -> None:
    await store_workflow(hive, CHILD)
    run_id = await start(hive, PARENT, {"path": "src"})
    await settle(hive)
    await hive.engine.stop()  # hived goes down while the child runs
    hive.events.unsubscribe(TaskEnded, hive.engine.task_ended)
    engine = await new_engine(hive)
    assert await engine.load() == 2  # the parent and its child
    await settle(hive)
    assert await drive(hive) == 3
    assert await state(hive, run_id) == ("succeeded", {"child": "succeeded", "after": "succeeded"})
    runs, _ = await hive.db.read(lambda c: store.list_runs(c, None, "lint-and-test", 10, 0))
    assert len(runs) == 1  # the child was found again, not started twice
