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
