"""The strategies of a concurrency per key, in process on the real store and a FakeClock:
cancel_in_progress (a new task of a key cancels the running or waiting one, through the normal
cancel: its agent is told to stop, and the new task takes the key once the old one's slot is free)
and cancel_newest (a new task that finds its key full is stored cancelled at submit, not refused)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hived.limits.gate import Found
from hived.limits.rules import Members, cluster_wide, displaced, is_full, queued_units
from hived.model.limits import LimitSpec
from hived.model.schemas import TaskSubmit
from tests.unit.inprocess import Core, result

REF = [{"name": "repo", "key": "${{ payload.repo }}"}]


async def define(hive: Core, **spec: Any) -> None:
    await hive.limit_service.apply(LimitSpec.model_validate(spec))


@pytest.mark.parametrize(
    ("others", "units", "concurrency", "full", "gone"),
    [
        ([], 1, 1, False, []),
        ([("a", 1)], 1, 1, True, ["a"]),
        ([("a", 1), ("b", 1)], 1, 1, True, ["a", "b"]),
        ([("a", 1), ("b", 1)], 1, 3, False, []),
        ([("a", 1), ("b", 1), ("c", 1)], 1, 3, True, ["a"]),
        ([("a", 2), ("b", 1)], 2, 3, True, ["a"]),
        ([("a", 1), ("b", 2)], 2, 3, True, ["a", "b"]),
    ],
)
def test_the_strategies_of_a_full_key(
    others: list[tuple[str, int]], units: int, concurrency: int, full: bool, gone: list[str]
) -> None:
    assert is_full(others, units, concurrency) is full
    assert displaced(others, units, concurrency) == gone


def test_members_oldest_first_without_the_new_one() -> None:
    members = Members()
    members.add("x", "late", 9, 1)
    members.add("x", "early", 2, 2)
    members.add("x", "new", 10, 1)
    members.add("y", "other", 1, 1)
    assert members.oldest_first("x", but="new") == [("early", 2), ("late", 1)]
    members.remove("x", "early")
    members.remove("x", "late")
    members.remove("x", "new")
    assert "x" not in members.by_key and members.oldest_first("x", but="") == []


@pytest.mark.parametrize(
    ("here", "there", "expected"),
    [
        ({}, {}, []),
        ({"a": (1, 1)}, {}, [("a", 1)]),  # one node: the gate's tasks only
        ({}, {"r": (3, 2)}, [("r", 2)]),  # another node's holder
        ({"a": (5, 1)}, {"r": (3, 1), "a": (5, 1)}, [("r", 1), ("a", 1)]),  # each task once, oldest first
        ({"a": (1, 1)}, {"late": (11, 1)}, [("a", 1)]),  # newer than the new task: not counted
        ({"new": (10, 1)}, {"new": (10, 1)}, []),  # the new task itself
        ({"b": (12, 1)}, {"r": (2, 1)}, [("r", 1)]),  # a later task of a batch here: not yet
    ],
)
def test_a_keys_tasks_cluster_wide_are_the_older_ones_of_every_node_each_once(
    here: dict[str, tuple[int, int]], there: dict[str, tuple[int, int]], expected: list[tuple[str, int]]
) -> None:
    assert cluster_wide(here, there, "new", 10) == expected


@pytest.mark.parametrize(
    ("limits", "units"),
    [
        ([{"name": "repo", "key": "x", "units": 2}], 2),
        ([{"name": "repo", "key": "x"}], 1),
        ([{"name": "repo", "key": "x", "units": 1}, {"name": "repo", "key": "x", "units": 2}], 3),
        ([{"name": "repo", "key": "y", "units": 1}], 0),
        ([{"name": "other", "key": "x", "units": 1}], 0),
        (None, 0),
        ("not a list", 0),
    ],
)
def test_the_units_a_queued_task_takes_of_a_key(limits: object, units: int) -> None:
    assert queued_units(limits, "repo", "x") == units


def elsewhere(found: dict[str, tuple[int, int]]) -> Any:
    """A cluster's `members` (hived.nodes.limits) that finds these tasks of key repo[x]."""

    async def members(wants: list[tuple[str, str | None]], seq: int) -> Found:
        assert wants == [("repo", "x")]
        return {("repo", "x"): {t: v for t, v in found.items() if v[0] < seq}}

    return members


async def test_cancel_newest_on_a_cluster_counts_another_nodes_holder(hive: Core) -> None:
    await define(hive, name="repo", concurrency=1, strategy="cancel_newest")
    hive.limit_service.members = elsewhere({"on-beta": (0, 1)})
    late = await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "x"}, limits=REF))
    assert late.status == "cancelled"
    assert late.error == "cancelled at submit: limit repo[x] is full (1 of 1 taken; strategy cancel_newest)"
    other = await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "y"}, limits=REF))
    assert other.status == "pending"  # another key: not read, not cancelled


async def test_cancel_in_progress_on_a_cluster_cancels_another_nodes_older_task(hive: Core) -> None:
    await define(hive, name="repo", concurrency=1, strategy="cancel_in_progress")
    asked: list[tuple[str, str]] = []

    async def cancel(task_id: str, error: str) -> bool:
        asked.append((task_id, error))
        return True

    hive.limit_service.members = elsewhere({"on-beta": (0, 1), "newer": (10**15, 1)})
    new = await hive.submit(payload={"repo": "x"}, limits=REF)
    ticket = hive.dispatcher.gate.waiting[new]
    task = type("T", (), {"id": new, "seq": ticket.seq})()
    (job,) = hive.limit_service.arrived(task, cancel)  # type: ignore[arg-type]
    assert await job is True
    why = f"cancelled: task {new} took limit repo[x] (strategy cancel_in_progress)"
    assert asked == [("on-beta", why)]  # the newer one (submitted meanwhile elsewhere) is left


async def test_on_a_cluster_a_new_task_does_not_start_before_its_strategies_decide(hive: Core) -> None:
    await define(hive, name="repo", concurrency=1, strategy="cancel_newest")
    hive.dispatcher.attach("a", [], 10)
    read = asyncio.Event()

    async def slow(wants: list[tuple[str, str | None]], seq: int) -> Found:
        await read.wait()  # the database's answer is not in yet
        return {("repo", "x"): {}}

    hive.limit_service.members = slow
    new = await hive.submit(payload={"repo": "x"}, limits=REF)
    assert await hive.lease("a") == []  # an agent has room and the key is free here: it waits
    read.set()
    assert await asyncio.gather(*hive.limit_service._cancels) == [False]  # decided: nothing to cancel
    assert [lease.task_id for lease in await hive.lease("a")] == [new]


async def test_a_strategy_on_a_cluster_falls_back_to_this_nodes_tasks_without_the_database(
    hive: Core,
) -> None:
    await define(hive, name="repo", concurrency=1, strategy="cancel_newest")

    async def away(wants: list[tuple[str, str | None]], seq: int) -> Found:
        raise OSError("the database is away")

    hive.limit_service.members = away
    first = await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "x"}, limits=REF))
    late = await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "x"}, limits=REF))
    assert (first.status, late.status) == ("pending", "cancelled")  # the first waits here: full


async def test_cancel_in_progress_stops_the_running_task_and_the_new_one_takes_the_key(hive: Core) -> None:
    await define(hive, name="repo", concurrency=1, strategy="cancel_in_progress")
    hive.dispatcher.attach("a", [], 10)
    old = await hive.submit(payload={"repo": "x"}, limits=REF)
    other = await hive.submit(payload={"repo": "y"}, limits=REF)
    (old_lease, other_lease) = sorted(await hive.lease("a"), key=lambda lease: lease.task_id != old)
    new = (await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "x"}, limits=REF))).id
    row = await hive.task(old)
    assert row["status"] == "cancelled"
    assert row["error"] == f"cancelled: task {new} took limit repo[x] (strategy cancel_in_progress)"
    leases, cancels = await hive.dispatcher.take("a", 10, 0)
    assert (leases, cancels) == ([], [old])  # the agent is told to stop the old one's handler
    detail = await hive.tasks.get(new)
    assert (detail.status, detail.waiting_reason) == ("pending", "limit repo[x]")  # until it has
    await hive.dispatcher.report("a", [result(old_lease, ok=False)])  # the handler was killed
    assert [lease.task_id for lease in await hive.lease("a")] == [new]
    assert (await hive.task(other))["status"] == "running"  # another key: untouched
    await hive.dispatcher.report("a", [result(other_lease)])
    assert (await hive.task(other))["status"] == "completed"


async def test_cancel_in_progress_cancels_a_waiting_task_of_the_key_too(hive: Core) -> None:
    await define(hive, name="repo", concurrency=1, strategy="cancel_in_progress")
    first = await hive.submit(payload={"repo": "x"}, limits=REF)  # no agent: it waits
    second = (await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "x"}, limits=REF))).id
    third = (await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "x"}, limits=REF))).id
    statuses = [(await hive.task(t))["status"] for t in (first, second, third)]
    assert statuses == ["cancelled", "cancelled", "pending"]
    info = hive.limit_service.info("repo")
    assert (info.holders, info.waiting) == (0, 1)
    hive.dispatcher.attach("a", [], 10)
    assert [lease.task_id for lease in await hive.lease("a")] == [third]


async def test_cancel_in_progress_with_room_for_two_cancels_the_oldest_only(hive: Core) -> None:
    await define(hive, name="repo", concurrency=2, strategy="cancel_in_progress")
    hive.dispatcher.attach("a", [], 10)
    ids = [await hive.submit(payload={"repo": "x"}, limits=REF) for _ in range(2)]
    assert len(await hive.lease("a")) == 2
    newest = (await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "x"}, limits=REF))).id
    assert [(await hive.task(t))["status"] for t in ids] == ["cancelled", "running"]
    assert (await hive.tasks.get(newest)).status == "pending"


async def test_cancel_newest_stores_a_task_that_finds_its_key_full_as_cancelled(hive: Core) -> None:
    await define(hive, name="repo", concurrency=1, strategy="cancel_newest")
    hive.dispatcher.attach("a", [], 10)
    first = (await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "x"}, limits=REF))).id
    (lease,) = await hive.lease("a")
    late = await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "x"}, limits=REF))
    assert late.status == "cancelled"
    assert late.error == "cancelled at submit: limit repo[x] is full (1 of 1 taken; strategy cancel_newest)"
    other = await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "y"}, limits=REF))
    assert other.status == "pending"
    assert (await hive.task(first))["status"] == "running"
    assert sorted(lease.task_id for lease in await hive.lease("a")) == [other.id]
    await hive.dispatcher.report("a", [result(lease)])
    again = await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "x"}, limits=REF))
    assert again.status == "pending"  # the key is free again


async def test_cancel_newest_counts_the_waiting_and_the_earlier_tasks_of_a_batch(hive: Core) -> None:
    await define(hive, name="repo", concurrency=2, strategy="cancel_newest")
    subs = [TaskSubmit(type="job", payload={"repo": "x"}, limits=REF) for _ in range(4)]
    tasks = await hive.tasks.submit_many(subs)  # no agent: the first two wait, the rest are cancelled
    assert [t.status for t in tasks] == ["pending", "pending", "cancelled", "cancelled"]
    assert "2 of 2 taken" in (tasks[2].error or "")
    info = hive.limit_service.info("repo")
    assert (info.waiting, [(k.key, k.waiting) for k in info.keys]) == (2, [("x", 2)])
    assert hive.dispatcher.queue_depth() == 2


async def test_a_strategy_applied_to_a_limit_with_tasks_counts_them(hive: Core) -> None:
    await define(hive, name="repo", concurrency=1)
    await hive.submit(payload={"repo": "x"}, limits=REF)
    await define(hive, name="repo", concurrency=1, strategy="cancel_newest")
    late = await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "x"}, limits=REF))
    assert late.status == "cancelled"
    await define(hive, name="repo", concurrency=1)  # back to queue: the new one waits
    queued = await hive.tasks.submit(TaskSubmit(type="job", payload={"repo": "x"}, limits=REF))
    assert queued.status == "pending"
