"""A step's end and the start of the steps it unblocks are one commit (a kill -9 sees both or
neither), the engine's work per step does not grow with the run, and a run's revision wakes the
long-poll `GET /runs/{id}?wait=S&since=N` at each change, not at its deadline. In process, on the
real store, with a FakeClock (a wait can only end early by a change: the clock never moves)."""

from __future__ import annotations

import asyncio
from typing import Any

from hived.store import workflows as store
from hived.workflows.service import WorkflowService
from tests.unit.inprocess import Core, done
from tests.unit.test_workflow_engine import DIAMOND, finish, start, state

CHAIN = {
    "name": "chain",
    "steps": [
        {"id": "a", "type": "t"},
        {"id": "b", "type": "t", "needs": ["a"]},
        {"id": "c", "type": "t", "needs": ["b"], "payload": {"from": "${{ steps.b.result }}"}},
    ],
}


def ready_but_pending(steps: dict[str, dict[str, Any]], needs: dict[str, list[str]]) -> list[str]:
    final = ("succeeded", "failed", "skipped", "cancelled")
    return [
        sid
        for sid, step in steps.items()
        if step["status"] == "pending" and all(steps[n]["status"] in final for n in needs[sid])
    ]


async def test_every_transaction_holds_a_steps_end_with_the_start_of_what_it_unblocks(hive: Core) -> None:
    """Each write function is traced inside its transaction: no state a crash could leave behind has
    a step whose needs are all over while it is still pending with no task. (A run is inserted
    `pending` with its steps, and its first steps start in the next commit; `load` starts them if
    hived died in between.)"""
    for spec in (CHAIN, DIAMOND):
        needs = {s["id"]: s.get("needs", []) for s in spec["steps"]}
        seen: list[dict[str, dict[str, Any]]] = []
        original = hive.db.write

        async def traced(fn: Any, original: Any = original, seen: list[Any] = seen) -> Any:
            def run(conn: Any) -> Any:
                result = fn(conn)
                running = [r["id"] for r in store.active_runs(conn) if r["status"] == "running"]
                for rows in store.run_steps(conn, running).values():
                    seen.append({row["step_id"]: row for row in rows})
                return result

            return await original(run)

        hive.db.write = traced  # type: ignore[method-assign]
        try:
            run_id = await start(hive, spec)
            await hive.burst(done)
        finally:
            hive.db.write = original  # type: ignore[method-assign]
        assert (await state(hive, run_id))[0] == "succeeded"
        assert len(seen) > 5
        for steps in seen:
            if set(steps) == set(needs):
                assert ready_but_pending(steps, needs) == [], steps
                running = [s for s in steps.values() if s["status"] == "running"]
                assert all(s["task_id"] for s in running)  # started with its task, in one write


async def test_one_engine_write_per_step_of_a_chain(hive: Core) -> None:
    """Per step of a chain: the dispatcher commits the task's end, the engine one write (the step's
    end, the next step and its task, the run's revision)."""
    hive.dispatcher.attach("w", [], 10)
    run_id = await start(hive, CHAIN)
    (a,) = await hive.lease("w")
    await asyncio.sleep(0)  # the lease's `running` mark (not awaited by take) is queued
    writes: list[str] = []
    original = hive.db.write

    async def counted(fn: Any) -> Any:
        writes.append(fn.__qualname__.split(".")[0])
        return await original(fn)

    hive.db.write = counted  # type: ignore[method-assign]
    try:
        await finish(hive, [a])
    finally:
        hive.db.write = original  # type: ignore[method-assign]
    assert writes == ["Ledger", "WorkflowEngine"]  # the task's end, then the engine's one write
    assert (await state(hive, run_id))[1] == {"a": "succeeded", "b": "running", "c": "pending"}


async def test_the_engine_looks_only_at_what_changed(hive: Core) -> None:
    """A step of a 2,000-step chain costs the engine about what a step of a 20-step chain does: the
    graph is not walked whole at every change."""
    costs = {}
    hive.dispatcher.attach("w5", [], 10)
    for n in (20, 2000):
        spec = {
            "name": f"long{n}",
            "steps": [{"id": f"s{i}", "type": "t", "needs": [f"s{i - 1}"] if i else []} for i in range(n)],
        }
        run_id = await start(hive, spec)
        run = hive.engine.runs[run_id]
        looked: list[int] = []
        calls = 0

        class Counting(dict):  # type: ignore[type-arg]
            def __getitem__(self, key: str) -> Any:
                nonlocal calls
                calls += 1
                return dict.__getitem__(self, key)

        run.graph.nodes = Counting(run.graph.nodes)
        for _ in range(5):
            calls = 0
            leases = await hive.lease("w5")
            assert len(leases) == 1
            await finish(hive, leases, agent="w5")
            looked.append(calls)
        costs[n] = max(looked)
        await hive.engine.cancel(run_id)
    assert costs[2000] == costs[20] > 0, costs


async def test_since_answers_at_a_change_and_not_before(hive: Core) -> None:
    hive.dispatcher.attach("w", [], 10)
    workflows = WorkflowService(hive.db, hive.engine)
    run_id = await start(hive, CHAIN)
    first = await workflows.get_run(run_id)
    assert first.status == "running" and first.revision >= 1
    assert (await workflows.get_run(run_id, wait=30, since=first.revision - 1)).revision == first.revision

    waiting = asyncio.create_task(workflows.get_run(run_id, wait=30, since=first.revision))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # nothing changed: it waits (the FakeClock never reaches 30 s)
    (a,) = await hive.lease("w")  # the step's task goes to an agent: the run shows it
    assigned = await asyncio.wait_for(waiting, 5)
    assert assigned.revision > first.revision and assigned.steps[0].agent_id == "w"

    waiting = asyncio.create_task(workflows.get_run(run_id, wait=30, since=assigned.revision))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await finish(hive, [a])
    moved = await asyncio.wait_for(waiting, 5)
    assert [s.status for s in moved.steps] == ["succeeded", "running", "pending"]
    assert moved.revision > assigned.revision

    await hive.burst(done, agent_id="w")
    final = await workflows.get_run(run_id, wait=30, since=moved.revision)
    assert final.status == "succeeded"
    stored = (await hive.db.read(lambda c: store.run_by_id(c, run_id)))[0]["revision"]
    assert final.revision == stored  # the count is written with the run's changes
    # an ended run does not change: the long-poll answers at once
    assert (
        await asyncio.wait_for(workflows.get_run(run_id, wait=30, since=final.revision), 5)
    ).status == "succeeded"
    assert len(hive.engine.watchers) == 0


async def test_a_wait_with_since_ends_at_its_deadline_when_nothing_changes(hive: Core) -> None:
    workflows = WorkflowService(hive.db, hive.engine)
    run_id = await start(hive, {"name": "gate", "steps": [{"id": "ok", "type": "approval"}]})
    seen = await workflows.get_run(run_id)
    waiting = asyncio.create_task(workflows.get_run(run_id, wait=10, since=seen.revision))
    await hive.clock.until_sleeping()
    await hive.clock.advance(10)
    assert (await asyncio.wait_for(waiting, 5)).revision == seen.revision
    waiting = asyncio.create_task(workflows.get_run(run_id, wait=10, since=seen.revision))
    await asyncio.sleep(0.05)
    await hive.engine.decide(run_id, "ok", approve=True, by="ops", comment=None)
    assert (await asyncio.wait_for(waiting, 5)).status == "succeeded"
