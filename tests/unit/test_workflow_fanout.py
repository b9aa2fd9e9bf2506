"""for_each steps in this process (real dispatcher and store, FakeClock): at most max_parallel items
at once, results in the items' order, a failed item, a for_each that is not a list, and a fan-out
resumed by a new engine (hived restarted)."""

from __future__ import annotations

from typing import Any

from hived.events import TaskEnded
from hived.model.schemas import AttemptResult, Lease
from hived.store import workflows as store
from hived.store.workflow_links import item_tasks
from hived.workflows.fanout import progress
from tests.unit.inprocess import Core
from tests.unit.test_workflow_engine import new_engine, run_row, start, state


def fan(n: int, max_parallel: int | None = 5, **review: Any) -> dict[str, Any]:
    step = {
        "id": "review",
        "type": "review",
        "needs": ["list"],
        "for_each": "${{ steps.list.result.files }}",
        "payload": {"file": "${{ item }}", "n": "${{ index }}"},
        **review,
    }
    if max_parallel is not None:
        step["max_parallel"] = max_parallel
    return {
        "name": "fan",
        "steps": [{"id": "list", "type": "list", "payload": {"n": n}}, step],
        "outputs": {"report": "${{ steps.review.result }}"},
    }


def report(lease: Lease, ok: bool = True) -> AttemptResult:
    """The list step lists `n` files; a review answers with its file and index."""
    if lease.type == "list":
        result: dict[str, Any] = {"files": [f"f{i}.py" for i in range(lease.payload["n"])]}
    else:
        result = {"reviewed": lease.payload["file"], "n": lease.payload["n"]}
    return AttemptResult(
        task_id=lease.task_id,
        attempt=lease.attempt,
        lease=lease.lease,
        ok=ok,
        result=result,
        error=None if ok else "boom",
    )


async def reported(hive: Core, leases: list[Lease], ok: bool = True) -> None:
    await hive.dispatcher.report("w", [report(lease, ok) for lease in leases])
    await hive.engine.idle()


async def run_items(hive: Core, run_id: str, fail: frozenset[int] = frozenset()) -> int:
    """Lease and report until nothing is left; returns the most items that ran at once (checked
    against the tasks table, not only the leases handed out)."""
    most = 0
    while leases := await hive.lease("w", 100):
        items = [lease for lease in leases if lease.type == "review"]
        running = await hive.db.read(lambda c: running_items(c, run_id))
        most = max(most, len(items), running)
        # reported in reverse: results must still come back in the items' order
        results = [report(x, ok=x.payload.get("n") not in fail) for x in reversed(leases)]
        await hive.dispatcher.report("w", results)
        await hive.engine.idle()
    return most


def running_items(conn: Any, run_id: str) -> int:
    return sum(t["status"] in ("assigned", "running") for t in item_tasks(conn, run_id))


async def test_a_fan_out_of_100_runs_5_at_a_time_and_returns_100_results_in_order(hive: Core) -> None:
    hive.dispatcher.attach("w", [], 100)
    run_id = await start(hive, fan(100))
    most = await run_items(hive, run_id)
    assert most == 5
    assert await state(hive, run_id) == ("succeeded", {"list": "succeeded", "review": "succeeded"})
    (step,) = [s for s in await steps_of(hive, run_id) if s["step_id"] == "review"]
    assert step["result"] == [{"reviewed": f"f{i}.py", "n": i} for i in range(100)]
    assert (await run_row(hive, run_id))["outputs"] == {"report": step["result"]}
    tasks = await hive.db.read(lambda c: item_labels(c, run_id))
    assert sorted(tasks) == sorted(("review", str(i)) for i in range(100))  # one task per item


def item_labels(conn: Any, run_id: str) -> list[tuple[str, str]]:
    return [(t["labels"]["hive/step"], t["labels"]["hive/item"]) for t in item_tasks(conn, run_id)]


async def steps_of(hive: Core, run_id: str) -> list[dict[str, Any]]:
    await hive.db.write(lambda c: None)
    return (await hive.db.read(lambda c: store.run_steps(c, [run_id])))[run_id]


async def test_without_max_parallel_every_item_starts_at_once(hive: Core) -> None:
    hive.dispatcher.attach("w", [], 100)
    run_id = await start(hive, fan(30, max_parallel=None))
    assert await run_items(hive, run_id) == 30
    assert (await state(hive, run_id))[0] == "succeeded"


async def test_one_failed_item_fails_the_step_and_cancels_the_others(hive: Core) -> None:
    hive.dispatcher.attach("w", [], 100)
    run_id = await start(hive, fan(10, max_parallel=3, retry={"max_attempts": 1}))
    await reported(hive, await hive.lease("w"))  # the list
    first = await hive.lease("w")
    assert len(first) == 3
    shown = progress(hive.engine.runs[run_id], "review")
    assert shown == {"total": 10, "ended": 0, "running": 3, "failed": 0}
    bad = next(x for x in first if x.payload["n"] == 1)
    await reported(hive, [bad], ok=False)
    assert await state(hive, run_id) == ("failed", {"list": "succeeded", "review": "failed"})
    (step,) = [s for s in await steps_of(hive, run_id) if s["step_id"] == "review"]
    assert step["error"] == "item 1 failed: boom"
    others = [await hive.task(x.task_id) for x in first if x is not bad]
    assert [t["status"] for t in others] == ["cancelled", "cancelled"]
    assert await hive.lease("w") == []  # no item after the failure is started


async def test_with_continue_on_failure_every_item_runs_and_the_run_goes_on(hive: Core) -> None:
    hive.dispatcher.attach("w", [], 100)
    spec = fan(6, max_parallel=2, retry={"max_attempts": 1}, continue_on_failure=True)
    run_id = await start(hive, spec)
    await run_items(hive, run_id, fail=frozenset({2, 4}))
    assert await state(hive, run_id) == ("succeeded", {"list": "succeeded", "review": "failed"})
    (step,) = [s for s in await steps_of(hive, run_id) if s["step_id"] == "review"]
    assert step["error"] == "2 of 6 items failed; first: item 2 failed: boom"
    assert len(step["result"]) == 6 and step["result"][5] == {"reviewed": "f5.py", "n": 5}


async def test_a_for_each_that_is_not_a_list_fails_its_step_saying_what_it_gave(hive: Core) -> None:
    spec = fan(3)
    spec["steps"][1]["for_each"] = "${{ steps.list.result }}"
    run_id = await start(hive, spec)
    hive.dispatcher.attach("w", [], 100)
    await run_items(hive, run_id)
    assert await state(hive, run_id) == ("failed", {"list": "succeeded", "review": "failed"})
    (step,) = [s for s in await steps_of(hive, run_id) if s["step_id"] == "review"]
    assert step["error"].startswith("for_each: for_each gave a map ({'files': ['f0.py'")
    assert step["error"].endswith("not a list")


async def test_an_empty_list_succeeds_with_no_task(hive: Core) -> None:
    hive.dispatcher.attach("w", [], 100)
    run_id = await start(hive, fan(0))
    await run_items(hive, run_id)
    assert await state(hive, run_id) == ("succeeded", {"list": "succeeded", "review": "succeeded"})
    assert (await run_row(hive, run_id))["outputs"] == {"report": []}


async def test_a_new_engine_resumes_a_fan_out_where_it_was(hive: Core) -> None:
    hive.dispatcher.attach("w", [], 100)
    run_id = await start(hive, fan(8, max_parallel=3))
    await reported(hive, await hive.lease("w"))  # the list
    first = await hive.lease("w")
    assert [x.payload["n"] for x in first] == [0, 1, 2]
    await hive.engine.stop()  # hived goes down; one item ends while no engine listens
    hive.events.unsubscribe(TaskEnded, hive.engine.task_ended)
    await hive.dispatcher.report("w", [report(first[0])])

    engine = await new_engine(hive)
    assert await engine.load() == 1
    await engine.idle()
    third = await hive.lease("w")
    assert [x.payload["n"] for x in third] == [3]  # 1 and 2 still run: one place was free
    await hive.dispatcher.report("w", [report(x) for x in [*first[1:], *third]])
    await engine.idle()
    await run_items(hive, run_id)
    (step,) = [s for s in await steps_of(hive, run_id) if s["step_id"] == "review"]
    assert step["result"] == [{"reviewed": f"f{i}.py", "n": i} for i in range(8)]
    assert len(await hive.db.read(lambda c: item_labels(c, run_id))) == 8  # no item ran twice
