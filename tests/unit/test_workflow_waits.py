"""Steps that wait without a task, in this process on a FakeClock: `sleep`, `wait_for` signals with
their timeout, approval timeouts with `on_timeout`, and rework loops (`reject --rework STEP`); each
wait outlives the engine (a new engine reads the wake-up times back from the database)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hived.errors import Conflict, Invalid
from hived.events import TaskEnded
from hived.store import workflows as store
from hived.workflows.engine import WorkflowEngine
from tests.unit.inprocess import Core
from tests.unit.test_workflow_engine import finish, run_row, start, state


async def steps_of(hive: Core, run_id: str) -> dict[str, dict[str, Any]]:
    await hive.db.write(lambda c: None)
    rows = await hive.db.read(lambda c: store.run_steps(c, [run_id])[run_id])
    return {row["step_id"]: row for row in rows}


async def advance(hive: Core, seconds: float) -> None:
    await hive.clock.advance(seconds)
    await hive.engine.idle()


NAP = {
    "name": "nap",
    "steps": [
        {"id": "a", "type": "a"},
        {"id": "nap", "sleep": "10m", "needs": ["a"]},
        {"id": "b", "type": "b", "needs": ["nap"]},
    ],
}


async def test_a_sleep_step_holds_no_agent_and_wakes_on_the_clock(hive: Core) -> None:
    hive.dispatcher.attach("w", [], 10)
    hive.engine.start()
    run_id = await start(hive, NAP)
    await finish(hive, await hive.lease("w"))
    started = (await steps_of(hive, run_id))["nap"]["started_at"]
    assert (await state(hive, run_id))[1]["nap"] == "waiting"
    assert await hive.lease("w") == []  # no task: nothing for an agent
    await hive.clock.until_sleeping()
    await advance(hive, 599)
    assert (await state(hive, run_id))[1]["nap"] == "waiting"
    await advance(hive, 1)
    nap = (await steps_of(hive, run_id))["nap"]
    assert nap["status"] == "succeeded" and nap["result"] == {"slept": 600.0}
    assert nap["finished_at"] - started == timedelta(seconds=600)
    (b,) = await hive.lease("w")
    assert b.type == "b"


async def test_a_sleep_outlives_the_engine(hive: Core) -> None:
    """hived goes down during the sleep and comes back after its end: the step wakes at once."""
    hive.dispatcher.attach("w", [], 10)
    run_id = await start(hive, NAP)
    await finish(hive, await hive.lease("w"))
    await hive.engine.stop()
    hive.events.unsubscribe(TaskEnded, hive.engine.task_ended)
    await hive.clock.advance(3600)
    engine = WorkflowEngine(
        hive.db, hive.events, hive.new_task_row, hive.accepted, hive.dispatcher.cancel, hive.clock
    )
    hive.engine = engine
    hive.events.subscribe(TaskEnded, engine.task_ended)
    assert await engine.load() == 1
    engine.start()
    await hive.clock.advance(0.01)
    await engine.idle()
    assert (await state(hive, run_id))[1]["nap"] == "succeeded"
    (b,) = await hive.lease("w")
    await finish(hive, [b])
    assert (await state(hive, run_id))[0] == "succeeded"


CI = {
    "name": "ci",
    "steps": [
        {"id": "green", "wait_for": {"signal": "ci", "timeout": "2h"}},
        {"id": "ship", "type": "ship", "needs": ["green"],
         "payload": {"sha": "${{ steps.green.result.sha }}"}},
    ],
}


async def test_a_signal_ends_the_wait_with_its_data(hive: Core) -> None:
    hive.dispatcher.attach("w", [], 10)
    run_id = await start(hive, CI)
    with pytest.raises(Conflict, match="no step waits for signal 'deploy' .*it waits for 'ci'"):
        await hive.engine.signal(run_id, "deploy", {})
    assert await hive.engine.signal(run_id, "ci", {"sha": "abc"}) == ["green"]
    await hive.engine.idle()
    assert (await steps_of(hive, run_id))["green"]["result"] == {"sha": "abc"}
    (ship,) = await hive.lease("w")
    assert ship.payload == {"sha": "abc"}
    with pytest.raises(Conflict, match=r"no step waits for a signal\)"):
        await hive.engine.signal(run_id, "ci", {})


async def test_a_signal_sent_before_the_step_starts_is_kept_for_it(hive: Core) -> None:
    """CI may report before the run reaches its wait: the signal is kept (in the database) and the
    step succeeds with it as soon as it starts, also after a restart in between."""
    spec = {
        "name": "early",
        "steps": [
            {"id": "build", "type": "build"},
            {"id": "green", "needs": ["build"], "wait_for": {"signal": "ci", "timeout": "1h"}},
            {"id": "ship", "type": "ship", "needs": ["green"],
             "payload": {"sha": "${{ steps.green.result }}"}},
        ],
    }
    hive.dispatcher.attach("w", [], 10)
    run_id = await start(hive, spec)
    build = await hive.lease("w")
    assert await hive.engine.signal(run_id, "ci", "abc") == ["green"]
    kept = (await steps_of(hive, run_id))["green"]
    assert (kept["status"], kept["result"], kept["decided_by"]) == ("pending", "abc", "signal")
    with pytest.raises(Conflict, match="signal 'ci' was sent already: green will start with it"):
        await hive.engine.signal(run_id, "ci", "again")  # one signal per step
    await hive.engine.stop()
    hive.events.unsubscribe(TaskEnded, hive.engine.task_ended)
    engine = WorkflowEngine(
        hive.db, hive.events, hive.new_task_row, hive.accepted, hive.dispatcher.cancel, hive.clock
    )
    hive.engine = engine
    hive.events.subscribe(TaskEnded, engine.task_ended)
    assert await engine.load() == 1
    await finish(hive, build)
    green = (await steps_of(hive, run_id))["green"]
    assert (green["status"], green["result"]) == ("succeeded", "abc")
    (ship,) = await hive.lease("w")
    assert ship.payload == {"sha": "abc"}


async def test_a_signal_not_sent_in_time_fails_the_step(hive: Core) -> None:
    hive.engine.start()
    run_id = await start(hive, CI)
    await hive.clock.until_sleeping()
    await advance(hive, 7200)
    green = (await steps_of(hive, run_id))["green"]
    assert green["status"] == "failed"
    assert green["error"] == "timed out after 7200s waiting for signal 'ci'"
    assert (await state(hive, run_id)) == ("failed", {"green": "failed", "ship": "skipped"})
    with pytest.raises(Conflict, match="has finished"):
        await hive.engine.signal(run_id, "ci", {})


def gate(on_timeout: str | None) -> dict[str, Any]:
    extra = {"on_timeout": on_timeout} if on_timeout else {}
    return {
        "name": "gated",
        "steps": [
            {"id": "go", "type": "approval", "timeout": "2s", **extra},
            {"id": "ship", "type": "ship", "needs": ["go"]},
        ],
    }


@pytest.mark.parametrize(
    ("on_timeout", "go", "run"),
    [(None, "failed", "failed"), ("reject", "failed", "failed"), ("approve", "succeeded", "running")],
)
async def test_an_approval_with_a_timeout_is_decided_by_on_timeout(
    hive: Core, on_timeout: str | None, go: str, run: str
) -> None:
    hive.engine.start()
    run_id = await start(hive, gate(on_timeout))
    waiting = (await steps_of(hive, run_id))["go"]
    assert waiting["status"] == "waiting"
    await hive.clock.until_sleeping()
    await advance(hive, 2)
    step = (await steps_of(hive, run_id))["go"]
    assert (step["status"], (await state(hive, run_id))[0]) == (go, run)
    assert step["decided_by"] == "timeout" and step["result"]["by"] == "timeout"
    if go == "failed":
        assert step["error"] == "rejected: no decision within 2s (on_timeout: reject)"
        assert (await run_row(hive, run_id))["error"].startswith("step 'go' failed: rejected: no decision")


async def test_a_decision_before_the_timeout_wins(hive: Core) -> None:
    hive.engine.start()
    run_id = await start(hive, gate("reject"))
    await hive.engine.decide(run_id, "go", True, "ann", None)
    await advance(hive, 5)
    assert (await steps_of(hive, run_id))["go"]["decided_by"] == "ann"
    assert (await state(hive, run_id))[1]["go"] == "succeeded"


REWORK = {
    "name": "rework",
    "steps": [
        {"id": "draft", "type": "draft", "payload": {"feedback": "${{ steps.review.comment }}"}},
        {"id": "lint", "type": "lint", "needs": ["draft"]},
        {"id": "review", "type": "approval", "needs": ["lint"], "max_rework": 2},
        {"id": "publish", "type": "publish", "needs": ["review"]},
    ],
}


async def test_a_rejection_with_rework_runs_the_step_again_with_the_comment(hive: Core) -> None:
    hive.dispatcher.attach("w", [], 10)
    run_id = await start(hive, REWORK)
    (draft,) = await hive.lease("w")
    assert draft.payload == {"feedback": None}
    await finish(hive, [draft])
    await finish(hive, await hive.lease("w"))  # lint
    with pytest.raises(Invalid, match="step 'publish' does not lead to approval 'review'"):
        await hive.engine.decide(run_id, "review", False, "ann", "x", rework="publish")
    await hive.engine.decide(run_id, "review", False, "ann", "shorter, please", rework="draft")
    await hive.engine.idle()
    steps = await steps_of(hive, run_id)
    assert {k: s["status"] for k, s in steps.items()} == dict.fromkeys(steps, "running") | {
        "lint": "pending",
        "review": "pending",
        "publish": "pending",
    }
    assert steps["review"]["result"]["rework"] == 1
    (again,) = await hive.lease("w")
    assert again.type == "draft" and again.task_id != draft.task_id
    assert again.payload == {"feedback": "shorter, please"}
    await finish(hive, [again])
    await finish(hive, await hive.lease("w"))
    assert (await state(hive, run_id))[1]["review"] == "waiting"
    await hive.engine.decide(run_id, "review", False, "ann", "again", rework="lint")
    await finish(hive, await hive.lease("w"))  # lint only: draft keeps its result
    with pytest.raises(Conflict, match=r"sent back 2 times already \(max_rework: 2\)"):
        await hive.engine.decide(run_id, "review", False, "ann", "more", rework="draft")
    await hive.engine.decide(run_id, "review", True, "ann", "fine")
    await finish(hive, await hive.lease("w"))  # publish
    status, steps = await state(hive, run_id)
    assert status == "succeeded"
    review = (await steps_of(hive, run_id))["review"]["result"]
    assert review == {"approved": True, "by": "ann", "comment": "fine", "rework": 2}
