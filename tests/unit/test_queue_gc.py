"""Queued tasks cost the garbage collector nothing (hardening item 18's /healthz stalls were full
collections over a large pending queue): pending, retrying and scheduled tasks wait as tuples of
atoms that CPython stops tracking, and come back whole when assigned."""

from __future__ import annotations

import gc
from datetime import UTC, datetime

from hived.model.limits import LimitRef, LimitSpec
from hived.model.schemas import TaskSubmit
from hived.tasks.attempts import ReadyTask, capability_set
from hived.tasks.packed import pack, unpack
from tests.unit.inprocess import Core, result

PAYLOAD = {"repo": "r", "args": {"files": ["a.py", "b.py"], "depth": 2.5, "dry": True}, "note": "\u00e9"}
RETRY = {"initial": 10.0, "multiplier": 2.0, "max": 60.0, "jitter": 0.0}


def tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


def waiting_task(hive: Core, i: int) -> ReadyTask:
    """A task as the dispatcher gets it once committed (rows built by the real task service)."""
    sub = TaskSubmit(type="job", requires=["nobody"], payload={**PAYLOAD, "n": i}, retry=RETRY, timeout=30)
    return ReadyTask.from_row(hive.new_task_row(sub))


async def test_waiting_tasks_add_no_tracked_objects(hive: Core) -> None:
    hive.dispatcher.enqueue(waiting_task(hive, 0))  # warm: caches
    before = tracked()
    for i in range(1, 2001):
        hive.dispatcher.enqueue(waiting_task(hive, i))  # pending
    for i in range(2001, 2201):
        hive.dispatcher.retries.schedule(waiting_task(hive, i), 60)  # waiting out a backoff
        hive.dispatcher.scheduled.schedule(waiting_task(hive, i + 200), 3600)  # --delay
    added = tracked() - before
    assert hive.dispatcher.queue_depth() == 2201 and len(hive.dispatcher.scheduled) == 200
    assert added <= 20, f"{added} objects tracked for 2,400 waiting tasks"  # it was 2 per task
    assert not any(gc.is_tracked(packed) for packed in hive.dispatcher.ready.values())


async def test_a_queued_task_comes_back_whole_when_assigned_and_retried(hive: Core) -> None:
    hive.dispatcher.attach("a", ["gpu"], 1)
    task_id = await hive.submit(requires=["gpu"], payload=PAYLOAD, max_attempts=2, retry=RETRY, timeout=30)
    gc.collect()
    assert not gc.is_tracked(hive.dispatcher.ready[task_id])
    (lease,) = await hive.lease("a")
    assert (lease.payload, lease.timeout) == (PAYLOAD, 30)
    await hive.dispatcher.report("a", [result(lease, ok=False)])
    assert task_id in hive.dispatcher.retries  # waits out its backoff, packed too
    await hive.clock.advance(10)
    (again,) = await hive.lease("a")
    assert (again.task_id, again.attempt, again.payload) == (task_id, 2, PAYLOAD)
    await hive.dispatcher.report("a", [result(again)])
    assert (await hive.task(task_id))["status"] == "completed"


def test_pack_and_unpack_keep_every_field() -> None:
    task = ReadyTask(
        id="t1",
        type="job",
        payload={"a": [1, {"b": None}], "s": "\ud83d\ude00", "big": 2**70, "f": 0.1, "t": True},
        priority=-3,
        seq=42,
        requires=capability_set(("gpu", "python")),
        options={"retry": RETRY, "limits": [{"name": "api", "key": "k", "units": 2}], "timeout": None},
        attempts=2,
        max_attempts=5,
        run_id="r1",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        throttled=1,
    )
    back = unpack(pack(task))
    assert back == task and back.requires is task.requires  # the shared set, not a copy
    assert type(back.payload["t"]) is bool and type(back.payload["big"]) is int


def test_a_payload_marshal_cannot_write_stays_an_object() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)  # not a JSON value (an in-process caller's)
    task = ReadyTask("t", "job", {"when": when}, 0, 1, frozenset(), {}, 0, 1)
    assert unpack(pack(task)) == task


async def test_tasks_waiting_for_limits_add_one_tracked_object_each(hive: Core) -> None:
    await hive.limit_service.apply(LimitSpec(name="api", rate="1/h", burst=1))
    await hive.limit_service.apply(LimitSpec(name="repo", concurrency=1))
    limits = [LimitRef(name="api"), LimitRef(name="repo", key="${{ payload.repo }}")]

    def limited(i: int) -> ReadyTask:
        sub = TaskSubmit(type="job", payload={"repo": f"r{i % 16}", "n": i}, retry=RETRY, limits=limits)
        return ReadyTask.from_row(hive.new_task_row(sub))

    for i in range(100):  # every key has its line, and its limits looked up: counted from here
        hive.dispatcher.enqueue(limited(i))
    before = tracked()
    for i in range(100, 1100):
        hive.dispatcher.enqueue(limited(i))
    added = tracked() - before
    assert hive.dispatcher.gate.waiting_count() == 1100
    assert added <= 1000 + 20, f"{added} objects tracked for 1,000 tasks waiting in the gate"  # it was 7 each
