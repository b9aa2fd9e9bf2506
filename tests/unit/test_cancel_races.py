"""Item 12 of the hardening issue: a cancel racing the end of its task records one end, one way.
Each interleaving is made deterministic: `asyncio.gather` starts its coroutines in order, each runs
to its first await (its write queued), and the writes commit in the order they were queued."""

from __future__ import annotations

import asyncio

from hived.events import TaskEnded
from tests.unit.inprocess import Core, result


def ends_published(hive: Core) -> list[tuple[str, str]]:
    """(task id, final status) of every TaskEnded published from now on."""
    seen: list[tuple[str, str]] = []
    hive.events.subscribe(TaskEnded, lambda ended: seen.append((ended.task_id, ended.status)))
    return seen


async def one_end(hive: Core, task_id: str) -> str:
    """The task's final status, checked to agree with the outcome of its last attempt."""
    row = await hive.task(task_id)
    attempts = await hive.attempts(task_id)
    if attempts:
        assert attempts[-1]["outcome"] == row["status"], (row["status"], attempts[-1])
    return str(row["status"])


async def test_item12_a_cancel_during_the_commit_of_a_result_records_the_completion(hive: Core) -> None:
    ended = ends_published(hive)
    hive.dispatcher.attach("a", [], 1)
    task_id = await hive.submit()
    (lease,) = await hive.lease("a")
    (ack,), cancelled = await asyncio.gather(
        hive.dispatcher.report("a", [result(lease)]), hive.dispatcher.cancel(task_id)
    )
    assert ack.accepted and cancelled is False  # it had ended: the cancel is refused, not recorded
    assert await one_end(hive, task_id) == "completed"
    assert ended == [(task_id, "completed")]
    assert hive.dispatcher.held_by("a") == []


async def test_item12_a_result_during_the_commit_of_a_cancel_is_refused(hive: Core) -> None:
    ended = ends_published(hive)
    hive.dispatcher.attach("a", [], 1)
    task_id = await hive.submit()
    (lease,) = await hive.lease("a")
    cancelled, (ack,) = await asyncio.gather(
        hive.dispatcher.cancel(task_id), hive.dispatcher.report("a", [result(lease)])
    )
    assert cancelled and (ack.accepted, ack.reason) == (False, "cancelled")
    assert await one_end(hive, task_id) == "cancelled"
    assert ended == [(task_id, "cancelled")]
    assert hive.dispatcher.held_by("a") == []  # the agent reported: its slot is free


async def test_item12_a_cancel_during_the_commit_of_its_assignment_never_delivers_it(hive: Core) -> None:
    ended = ends_published(hive)
    hive.dispatcher.attach("a", [], 1)
    first = await hive.submit()
    await asyncio.gather(hive.dispatcher.run_pending(), hive.dispatcher.cancel(first))
    second = await hive.submit()
    await asyncio.gather(hive.dispatcher.cancel(second), hive.dispatcher.run_pending())
    assert await hive.dispatcher.take("a", 1, 0) == ([], [])  # nothing to run, nothing to stop
    assert hive.dispatcher.held_by("a") == []
    for task_id in (first, second):
        assert await one_end(hive, task_id) == "cancelled"
    assert sorted(ended) == sorted([(first, "cancelled"), (second, "cancelled")])


async def test_item12_a_cancelled_attempt_whose_agent_is_lost_stays_cancelled(hive: Core) -> None:
    ended = ends_published(hive)
    hive.dispatcher.attach("a", [], 1)
    task_id = await hive.submit(max_attempts=3)
    await hive.lease("a")
    assert await hive.dispatcher.cancel(task_id)
    await hive.dispatcher.agent_gone("a")  # before it reported the cancel: nothing more is recorded
    assert await one_end(hive, task_id) == "cancelled"
    assert ended == [(task_id, "cancelled")]
    assert hive.dispatcher.in_flight == {}


async def test_item12_results_handed_in_together_are_judged_after_every_commit_under_way(
    hive: Core,
) -> None:
    """The agent hands in A and B together while B's cancel is being committed; A is cancelled while
    the report waits for B. A's result must be refused too (the agent is told nothing else about
    A), or A stays held by the agent forever."""
    ended = ends_published(hive)
    hive.dispatcher.attach("a", [], 2)
    first, second = await hive.submit(), await hive.submit()
    leases = {lease.task_id: lease for lease in await hive.lease("a")}
    cancelled_second, acks, cancelled_first = await asyncio.gather(
        hive.dispatcher.cancel(second),
        hive.dispatcher.report("a", [result(leases[first]), result(leases[second])]),
        hive.dispatcher.cancel(first),
    )
    assert cancelled_second and cancelled_first
    assert [(ack.accepted, ack.reason) for ack in acks] == [(False, "cancelled")] * 2
    assert hive.dispatcher.held_by("a") == []
    for task_id in (first, second):
        assert await one_end(hive, task_id) == "cancelled"
    assert sorted(ended) == sorted([(first, "cancelled"), (second, "cancelled")])
