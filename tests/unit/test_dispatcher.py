"""The dispatcher in this process, on the real store and a FakeClock: assignment, lease fencing,
retries with backoff, cancellation, lost agents. Driven by `run_pending` (no background loops)
except where the loops themselves are the subject."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from hived.model.schemas import TaskSubmit
from hived.store import tasks as task_store
from tests.unit.inprocess import Core, result

NO_JITTER = {"initial": 10.0, "multiplier": 2.0, "max": 60.0, "jitter": 0.0}


@pytest.mark.parametrize(
    ("agents", "tasks", "expected"),
    [
        # one slot, two priorities: the higher runs first
        ({"a": []}, [("low", 1, []), ("high", 9, [])], {"high": "a"}),
        # one slot, one priority: first come, first served
        ({"a": []}, [("first", 5, []), ("second", 5, [])], {"first": "a"}),
        # a task goes only to an agent with every capability it requires
        ({"a": ["gpu"], "b": []}, [("g", 5, ["gpu"])], {"g": "a"}),
        ({"a": ["gpu"], "b": ["gpu", "python"]}, [("both", 5, ["gpu", "python"])], {"both": "b"}),
        # nobody able: it waits
        ({"a": ["python"]}, [("g", 5, ["gpu"])], {}),
        # the capable agent is busy with the high one; the plain task takes the other agent
        ({"a": ["gpu"], "b": []}, [("g", 9, ["gpu"]), ("plain", 1, [])], {"g": "a", "plain": "b"}),
    ],
)
async def test_assignment_by_capability_and_priority(
    hive: Core,
    agents: dict[str, list[str]],
    tasks: list[tuple[str, int, list[str]]],
    expected: dict[str, str],
) -> None:
    for agent_id, caps in agents.items():
        hive.dispatcher.attach(agent_id, caps, 1)
    ids = {}
    for name, priority, requires in tasks:
        ids[await hive.submit(priority=priority, requires=requires)] = name
    got = {}
    for agent_id in agents:
        for lease in await hive.lease(agent_id):
            got[ids[lease.task_id]] = agent_id
    assert got == expected
    for task_id, name in ids.items():
        row = await hive.task(task_id)
        assert row["status"] == ("running" if name in expected else "pending")
        assert row["agent_id"] == expected.get(name)


async def test_a_result_under_a_stale_lease_is_refused(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 1)
    task_id = await hive.submit(max_attempts=3, retry=NO_JITTER)
    (lease,) = await hive.lease("a")
    (ack,) = await hive.dispatcher.report("a", [result(lease, lease_number=lease.lease + 1)])
    assert not ack.accepted and "stale" in (ack.reason or "")
    assert hive.dispatcher.held_by("a") == [task_id]

    await hive.dispatcher.agent_gone("a")  # its attempt fails; the task retries on another agent
    await hive.clock.advance(10)
    hive.dispatcher.attach("b", [], 1)
    (second,) = await hive.lease("b")
    assert (second.task_id, second.attempt) == (task_id, 2) and second.lease > lease.lease
    (late,) = await hive.dispatcher.report("a", [result(lease)])  # agent a comes back with its result
    assert not late.accepted
    (ack,) = await hive.dispatcher.report("b", [result(second)])
    assert ack.accepted
    row = await hive.task(task_id)
    assert (row["status"], row["agent_id"], row["result"]) == ("completed", "b", {"done": True})


async def test_a_failed_attempt_retries_after_its_backoff_on_the_clock(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 1)
    task_id = await hive.submit(max_attempts=3, retry=NO_JITTER)
    (first,) = await hive.lease("a")
    await hive.dispatcher.report("a", [result(first, ok=False)])
    row = await hive.task(task_id)
    assert row["status"] == "retrying"
    assert row["next_attempt_at"] == hive.clock.now() + timedelta(seconds=10)
    assert hive.dispatcher.queue_depth() == 1

    await hive.clock.advance(9.9)
    assert await hive.lease("a") == []  # still waiting out 10 s
    await hive.clock.advance(0.1)
    (second,) = await hive.lease("a")
    assert second.attempt == 2
    await hive.dispatcher.report("a", [result(second, ok=False)])

    await hive.clock.advance(19.9)  # the second backoff doubles
    assert await hive.lease("a") == []
    await hive.clock.advance(0.1)
    (third,) = await hive.lease("a")
    await hive.dispatcher.report("a", [result(third, ok=False)])
    row = await hive.task(task_id)
    assert (row["status"], row["attempts"]) == ("failed", 3)  # max_attempts reached: no more retries
    assert [a["outcome"] for a in await hive.attempts(task_id)] == ["failed"] * 3


async def test_the_retry_loop_wakes_when_the_backoff_ends(hive: Core) -> None:
    """The loops run here: the retry loop sleeps on the clock, a long poll waits on the clock."""
    hive.dispatcher.attach("a", [], 1)
    hive.dispatcher.start()
    task_id = await hive.submit(max_attempts=2, retry=NO_JITTER)
    async with asyncio.timeout(5):
        first, _ = await hive.dispatcher.take("a", 1, wait=30)
        await hive.dispatcher.report("a", [result(first[0], ok=False)])
        polling = asyncio.ensure_future(hive.dispatcher.take("a", 1, wait=30))
        await hive.clock.advance(5)
        assert not polling.done()
        await hive.clock.advance(5)  # the backoff ends: the retry is queued, assigned and delivered
        leases, _ = await polling
    assert [(lease.task_id, lease.attempt) for lease in leases] == [(task_id, 2)]


async def test_a_long_poll_returns_empty_when_its_wait_ends_on_the_clock(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 1)
    polling = asyncio.ensure_future(hive.dispatcher.take("a", 1, wait=20))
    await hive.clock.until_sleeping()
    await hive.clock.advance(19)
    assert not polling.done()
    await hive.clock.advance(1)
    assert await asyncio.wait_for(polling, 5) == ([], [])


@pytest.mark.parametrize(("asking", "woken"), [(0, True), (1, False)])
async def test_a_result_wakes_the_open_poll_only_of_a_full_agent(
    hive: Core, asking: int, woken: bool
) -> None:
    """A full agent keeps a poll open asking for nothing: its result frees a slot, so that poll
    answers at once. A poll that asks for work stays open: answering it empty would make the agent
    pause before polling again, and a task submitted meanwhile would wait (the idle round trip)."""
    hive.dispatcher.attach("a", [], 2)
    await hive.submit()
    (lease,) = await hive.lease("a")
    polling = asyncio.ensure_future(hive.dispatcher.take("a", asking, wait=20))
    await hive.clock.until_sleeping()
    (ack,) = await hive.dispatcher.report("a", [result(lease)])
    assert ack.accepted
    # The clock stands still: only a wake-up ends it (a deadline for that; a short look for the other).
    await asyncio.wait({polling}, timeout=10 if woken else 0.2)
    assert polling.done() is woken
    await hive.clock.advance(20)
    assert await asyncio.wait_for(polling, 5) == ([], [])


async def test_cancel_of_a_queued_task(hive: Core) -> None:
    task_id = await hive.submit()
    assert await hive.dispatcher.cancel(task_id)
    assert not await hive.dispatcher.cancel(task_id)  # already ended
    hive.dispatcher.attach("a", [], 1)
    assert await hive.lease("a") == []
    assert (await hive.task(task_id))["status"] == "cancelled"


async def test_cancel_of_a_retrying_task(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 1)
    task_id = await hive.submit(max_attempts=2, retry=NO_JITTER)
    (lease,) = await hive.lease("a")
    await hive.dispatcher.report("a", [result(lease, ok=False)])
    assert await hive.dispatcher.cancel(task_id)
    await hive.clock.advance(10)
    assert await hive.lease("a") == []
    assert (await hive.task(task_id))["status"] == "cancelled"
    assert hive.dispatcher.queue_depth() == 0


async def test_cancel_in_flight_tells_the_agent_and_refuses_its_result(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 1)
    task_id = await hive.submit()
    (lease,) = await hive.lease("a")
    assert await hive.dispatcher.cancel(task_id)
    assert (await hive.task(task_id))["status"] == "cancelled"
    leases, cancels = await hive.dispatcher.take("a", 0, 0)
    assert (leases, cancels) == ([], [task_id])
    assert hive.dispatcher.held_by("a") == [task_id]  # the agent still runs it until it reports
    (ack,) = await hive.dispatcher.report("a", [result(lease)])
    assert (ack.accepted, ack.reason) == (False, "cancelled")
    assert hive.dispatcher.held_by("a") == []
    assert (await hive.task(task_id))["status"] == "cancelled"


async def test_cancel_of_an_undelivered_assignment_frees_the_slot_at_once(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 1)
    task_id = await hive.submit()
    await hive.dispatcher.run_pending()  # assigned, not yet taken
    assert hive.dispatcher.held_by("a") == [task_id]
    assert await hive.dispatcher.cancel(task_id)
    assert hive.dispatcher.held_by("a") == []
    assert await hive.dispatcher.take("a", 1, 0) == ([], [])


async def test_a_lost_agent_s_attempts_are_requeued(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 2)
    ids = {await hive.submit(max_attempts=2, retry=NO_JITTER) for _ in range(2)}
    assert {lease.task_id for lease in await hive.lease("a")} == ids
    assert await hive.dispatcher.agent_gone("a") == 2
    for task_id in ids:
        assert (await hive.task(task_id))["status"] == "retrying"
        (attempt,) = await hive.attempts(task_id)
        assert (attempt["outcome"], attempt["reason"]) == ("failed", "agent_lost")
    hive.dispatcher.attach("b", [], 2)
    await hive.clock.advance(10)
    assert {(lease.task_id, lease.attempt) for lease in await hive.lease("b")} == {(t, 2) for t in ids}
    assert await hive.dispatcher.agent_gone("a") == 0  # gone already


async def test_a_task_submitted_to_a_free_agent_is_assigned_in_the_same_commit(hive: Core) -> None:
    """The idle round trip: the insert and the assignment are one commit, and the lease is in the
    agent's inbox when submit returns (no turn of the dispatch loop)."""
    hive.dispatcher.attach("a", [], 1)
    task = await hive.tasks.submit(TaskSubmit(type="job"))
    assert (task.status, task.agent_id) == ("assigned", "a")
    row = await hive.task(task.id)
    assert (row["status"], row["agent_id"], row["attempts"]) == ("assigned", "a", 1)
    leases, _ = await hive.dispatcher.take("a", 1, 0)
    assert [lease.task_id for lease in leases] == [task.id]


@pytest.mark.parametrize("why", ["queued before it", "no able agent", "agent full"])
async def test_a_task_is_claimed_at_submit_only_when_it_would_be_assigned_at_once(
    hive: Core, why: str
) -> None:
    hive.dispatcher.attach("a", [], 1)
    if why == "queued before it":
        hive.dispatcher.paused = True
        first = await hive.submit()
        hive.dispatcher.paused = False
    elif why == "agent full":
        await hive.tasks.submit(TaskSubmit(type="job"))
    task = await hive.tasks.submit(TaskSubmit(type="job", requires=["gpu"] if why == "no able agent" else []))
    assert task.status == "pending"
    if why == "queued before it":  # it stays behind the older task: FIFO holds
        (lease,) = await hive.lease("a")
        assert lease.task_id == first


async def test_a_claim_whose_commit_fails_leaves_no_trace(hive: Core, monkeypatch: Any) -> None:
    hive.dispatcher.attach("a", [], 1)

    def broken(*_args: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(task_store.INSERT_ATTEMPT, "run", broken)  # the attempt's row, in the commit
    with pytest.raises(Exception, match="disk gone|unavailable"):
        await hive.tasks.submit(TaskSubmit(type="job"))
    monkeypatch.undo()
    assert hive.dispatcher.in_flight == {} and hive.dispatcher.held_by("a") == []
    assert hive.dispatcher.queue_depth() == 0  # not queued: it was never committed
    task = await hive.tasks.submit(TaskSubmit(type="job"))  # the slot is free again
    assert task.status == "assigned"


async def test_deliveries_are_marked_running_together_and_an_ended_attempt_not_at_all(
    hive: Core, monkeypatch: Any
) -> None:
    """`running` is shown, not needed for the lease: deliveries are marked in one write per window,
    and an attempt that ended first is left to its end, which sets started_at itself."""
    writes: list[list[str]] = []
    real = task_store.mark_running
    monkeypatch.setattr(
        task_store, "mark_running", lambda c, marks: writes.append([m[0] for m in marks]) or real(c, marks)
    )
    hive.dispatcher.attach("a", [], 3)
    ids = [await hive.submit() for _ in range(3)]
    leases = await hive.lease("a")
    assert sorted(lease.task_id for lease in leases) == sorted(ids)
    done = leases[0]
    (ack,) = await hive.dispatcher.report("a", [result(done)])
    assert ack.accepted
    await hive.dispatcher.marks.flush()
    assert len(writes) == 1 and sorted(writes[0]) == sorted(t for t in ids if t != done.task_id)
    delivered = hive.dispatcher.in_flight[leases[1].task_id].delivered_at
    for task_id in ids:
        row = await hive.task(task_id)
        assert row["status"] == ("completed" if task_id == done.task_id else "running")
        assert row["started_at"] == delivered  # the end set it for the attempt never marked


async def test_queue_depth_by_state_and_priority(hive: Core) -> None:
    for priority in (5, 5, 9):
        await hive.submit(priority=priority, max_attempts=3, retry=NO_JITTER)
    assert hive.dispatcher.depth_by_priority() == {("pending", 5): 2, ("pending", 9): 1}
    hive.dispatcher.attach("a", [], 1)
    (first,) = await hive.lease("a")  # the priority 9 task
    await hive.dispatcher.report("a", [result(first, ok=False)])
    assert hive.dispatcher.depth_by_priority() == {("pending", 5): 2, ("retrying", 9): 1}
