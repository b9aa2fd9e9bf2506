"""Reruns: which steps run again (a table of the pure rule), and a rerun in this process that runs
only those (counted by their task records) and keeps the others' results."""

from __future__ import annotations

from typing import Any

import pytest

from hived.errors import Conflict, NotFound
from hived.model.reruns import steps_to_rerun
from hived.store import workflows as store
from hived.store.workflow_links import tasks
from hived.workflows.rerun import rerun
from tests.unit.inprocess import Core, done
from tests.unit.test_workflow_engine import run_row, start, state

#   a -> b -> c        d (independent)
NEEDS = {"a": [], "b": ["a"], "c": ["b"], "d": []}
OK = "succeeded"


@pytest.mark.parametrize(
    ("statuses", "from_step", "again"),
    [
        ({"a": OK, "b": "failed", "c": "skipped", "d": OK}, None, {"b", "c"}),
        ({"a": OK, "b": "failed", "c": "skipped", "d": OK}, "b", {"b", "c"}),
        ({"a": OK, "b": "failed", "c": "skipped", "d": OK}, "a", {"a", "b", "c"}),
        ({"a": OK, "b": OK, "c": OK, "d": OK}, None, set()),
        ({"a": OK, "b": OK, "c": OK, "d": OK}, "c", {"c"}),
        ({"a": OK, "b": OK, "c": OK, "d": "cancelled"}, "c", {"c", "d"}),  # what did not succeed, too
        ({"a": "cancelled", "b": "cancelled", "c": "cancelled", "d": OK}, None, {"a", "b", "c"}),
    ],
)
def test_steps_to_rerun(statuses: dict[str, str], from_step: str | None, again: set[str]) -> None:
    assert steps_to_rerun(NEEDS, statuses, from_step) == again


FLAKY = {
    "name": "flaky",
    "steps": [
        {"id": "a", "type": "a"},
        {"id": "b", "type": "b", "needs": ["a"], "retry": {"max_attempts": 1}},
        {"id": "c", "type": "c", "needs": ["b"], "payload": {"from_a": "${{ steps.a.result }}"}},
        {"id": "d", "type": "d"},
    ],
}


def fail_b(lease: Any) -> tuple[bool, dict[str, Any] | None]:
    return lease.type != "b", {"echo": lease.payload, "type": lease.type}


async def tasks_of(hive: Core, run_id: str) -> list[str]:
    def read(conn: Any) -> list[str]:
        return sorted(r.type for r in conn.execute(tasks.select().where(tasks.c.run_id == run_id)))

    await hive.db.write(lambda c: None)
    return await hive.db.read(read)


async def test_a_rerun_runs_only_the_failed_step_and_what_follows_it(hive: Core) -> None:
    first = await start(hive, FLAKY)
    await hive.burst(fail_b)
    assert await state(hive, first) == ("failed", {"a": OK, "b": "failed", "c": "skipped", "d": OK})
    assert await tasks_of(hive, first) == ["a", "b", "d"]

    second = await rerun(hive.db, hive.engine, first, None)
    await hive.engine.idle()
    assert await hive.burst(done) == 2
    assert await state(hive, second) == ("succeeded", dict.fromkeys("abcd", OK))
    assert await tasks_of(hive, second) == ["b", "c"]  # a and d were not run again
    assert (await run_row(hive, second))["rerun_of"] == first
    steps = {s["step_id"]: s for s in (await hive.db.read(lambda c: store.run_steps(c, [second])))[second]}
    assert steps["a"]["result"] == {"echo": {}, "type": "a"}  # kept from the first run
    assert steps["c"]["result"]["echo"] == {"from_a": {"echo": {}, "type": "a"}}  # given the kept result


async def test_a_rerun_from_a_step_runs_it_and_its_descendants(hive: Core) -> None:
    first = await start(hive, FLAKY)
    await hive.burst(done)
    assert (await state(hive, first))[0] == "succeeded"
    with pytest.raises(Conflict, match="every step succeeded; name the step"):
        await rerun(hive.db, hive.engine, first, None)
    with pytest.raises(NotFound, match="has no step 'x'"):
        await rerun(hive.db, hive.engine, first, "x")
    second = await rerun(hive.db, hive.engine, first, "b")
    await hive.engine.idle()
    assert await hive.burst(done) == 2
    assert await tasks_of(hive, second) == ["b", "c"]


async def test_a_run_that_has_not_ended_cannot_be_rerun(hive: Core) -> None:
    run_id = await start(hive, FLAKY)
    with pytest.raises(Conflict, match="is running: only a run that has ended"):
        await rerun(hive.db, hive.engine, run_id, None)
