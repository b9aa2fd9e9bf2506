"""The queue controls in this process, on the real store and a FakeClock: pauses hold tasks pending and
resumes release them, cordoned agents get nothing new, scheduled tasks start when due, unstarted tasks
expire, labels filter, and bulk cancel and retry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hived.errors import Invalid, NotFound
from hived.model.queue import BulkRequest, PauseSelector, ResumeRequest
from hived.model.schemas import AgentSpec, TaskSubmit
from tests.unit.inprocess import Core, result


async def test_a_pause_holds_tasks_pending_and_a_resume_releases_them(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 10)
    queued = await hive.submit("build")
    await hive.tasks.controls.pause(PauseSelector(type="build"))
    later = await hive.submit("build")
    other = await hive.submit("test")
    assert [lease.task_id for lease in await hive.lease("a")] == [other]
    for task_id in (queued, later):
        view = await hive.tasks.get(task_id)
        assert (view.status, view.waiting_reason) == ("pending", "paused (type build)")
    assert (await hive.tasks.get(other)).waiting_reason is None
    paused = await hive.tasks.controls.resume(ResumeRequest(type="build"))
    assert paused == []
    assert [lease.task_id for lease in await hive.lease("a")] == [queued, later]  # in their order
    assert (await hive.tasks.get(queued)).waiting_reason is None


async def test_pauses_by_requires_and_the_whole_queue(hive: Core) -> None:
    hive.dispatcher.attach("a", ["gpu"], 10)
    gpu = await hive.submit("x", requires=["gpu"])
    plain = await hive.submit("x")
    await hive.tasks.controls.pause(PauseSelector(requires=["gpu"]))
    assert [lease.task_id for lease in await hive.lease("a")] == [plain]
    await hive.tasks.controls.pause(PauseSelector())  # everything
    assert len(hive.tasks.controls.pauses()) == 2
    await hive.tasks.controls.resume(ResumeRequest(requires=["gpu"]))
    assert await hive.lease("a") == []  # still held by the pause of every task
    assert (await hive.tasks.get(gpu)).waiting_reason == "paused (all tasks)"
    await hive.tasks.controls.resume(ResumeRequest(all=True))
    assert [lease.task_id for lease in await hive.lease("a")] == [gpu]


async def test_resume_of_what_is_not_paused_is_refused(hive: Core) -> None:
    with pytest.raises(NotFound, match="not paused for type build"):
        await hive.tasks.controls.resume(ResumeRequest(type="build"))
    with pytest.raises(Invalid, match="all: give all, or a selector"):
        await hive.tasks.controls.resume(ResumeRequest(type="build", all=True))


async def test_a_task_submitted_to_a_free_agent_is_not_claimed_while_paused_or_cordoned(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 1)
    await hive.tasks.controls.pause(PauseSelector(type="build"))
    held = await hive.tasks.submit(TaskSubmit(type="build"))
    assert held.status == "pending" and held.waiting_reason == "paused (type build)"
    await hive.tasks.controls.cordon("a", True)
    task = await hive.tasks.submit(TaskSubmit(type="test"))
    assert task.status == "pending"  # not assigned inside its own submit
    assert await hive.lease("a") == []
    await hive.tasks.controls.cordon("a", False)
    claimed = await hive.tasks.submit(TaskSubmit(type="test2"))
    assert [lease.task_id for lease in await hive.lease("a")] == [task.id]
    assert claimed.status == "pending"  # the agent's one slot went to the older task


async def test_a_cordoned_agent_gets_nothing_new_while_its_running_task_finishes(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 2)
    running = await hive.submit()
    [lease] = await hive.lease("a")
    await hive.tasks.controls.cordon("a", True)
    waiting = await hive.submit()
    assert await hive.lease("a") == []
    await hive.dispatcher.report("a", [result(lease)])
    assert (await hive.task(running))["status"] == "completed"
    assert await hive.lease("a") == []
    hive.dispatcher.attach("b", [], 1)  # another agent takes it
    assert [lease.task_id for lease in await hive.lease("b")] == [waiting]


async def test_pauses_and_cordons_are_stored(hive: Core) -> None:
    await hive.tasks.controls.pause(PauseSelector(type="build", workflow="ship"))
    await hive.tasks.controls.pause(PauseSelector(type="build", workflow="ship"))  # once
    agent = await hive.agents.create(AgentSpec(name="w", handler={"exec": ["true"]}))
    await hive.tasks.controls.cordon(agent.id, True)
    again = type(hive.tasks.controls)(hive.dispatcher)
    hive.dispatcher.holding.pauses.clear()
    hive.dispatcher.holding.cordoned.clear()
    await again.load()
    assert [(p.type, p.workflow) for p in again.pauses()] == [("build", "ship")]
    assert hive.dispatcher.holding.cordoned == {agent.id}


async def test_scheduled_tasks_start_when_due(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 10)
    task = await hive.tasks.submit(TaskSubmit(type="x", delay=600))
    assert task.status == "scheduled"
    assert task.not_before == hive.clock.now() + timedelta(seconds=600)
    at = await hive.tasks.submit(TaskSubmit(type="x", at=hive.clock.now() + timedelta(seconds=60)))
    past = await hive.tasks.submit(TaskSubmit(type="x", at=hive.clock.now() - timedelta(days=1)))
    assert past.status in ("pending", "assigned")  # a time past is now
    assert [lease.task_id for lease in await hive.lease("a")] == [past.id]
    await hive.clock.advance(59)
    await hive.tasks.timers.run_pending()
    assert await hive.lease("a") == []
    await hive.clock.advance(1)
    await hive.tasks.timers.run_pending()
    assert (await hive.task(at.id))["status"] == "pending"
    assert [lease.task_id for lease in await hive.lease("a")] == [at.id]
    assert (await hive.task(task.id))["status"] == "scheduled"
    await hive.clock.advance(540)
    await hive.tasks.timers.run_pending()
    assert [lease.task_id for lease in await hive.lease("a")] == [task.id]


async def test_a_scheduled_task_can_be_cancelled_and_waits_are_answered(hive: Core) -> None:
    task = await hive.tasks.submit(TaskSubmit(type="x", delay=600))
    assert hive.dispatcher.holds(task.id)
    cancelled = await hive.tasks.cancel(task.id)
    assert cancelled.status == "cancelled"
    await hive.clock.advance(600)
    await hive.tasks.timers.run_pending()
    assert (await hive.task(task.id))["status"] == "cancelled"


async def test_an_unstarted_task_expires(hive: Core) -> None:
    task = await hive.tasks.submit(TaskSubmit(type="x", expires_in=3600))
    assert task.expires_at == hive.clock.now() + timedelta(hours=1)
    scheduled = await hive.tasks.submit(TaskSubmit(type="x", delay=60, expires_in=120))
    await hive.clock.advance(3600)
    await hive.tasks.timers.run_pending()
    for task_id in (task.id, scheduled.id):
        row = await hive.task(task_id)
        assert row["status"] == "failed"
        assert row["error"].startswith("expired: not started by ")
    assert not hive.dispatcher.holds(task.id)


async def test_a_started_task_does_not_expire(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 1)
    task = await hive.tasks.submit(TaskSubmit(type="x", expires_in=60))
    [lease] = await hive.lease("a")
    await hive.clock.advance(61)
    await hive.tasks.timers.run_pending()
    await hive.dispatcher.report("a", [result(lease)])
    assert (await hive.task(task.id))["status"] == "completed"


async def test_expiry_must_come_after_the_start(hive: Core) -> None:
    with pytest.raises(ValueError, match="expires_in: the task would expire before it is due"):
        TaskSubmit(type="x", delay=60, expires_in=60)
    with pytest.raises(Invalid, match="expires_in: the task would expire before it is due"):
        await hive.tasks.submit(TaskSubmit(type="x", at=hive.clock.now() + timedelta(hours=2), expires_in=60))
    with pytest.raises(ValueError, match="delay: give delay or at, not both"):
        TaskSubmit(type="x", delay=60, at=hive.clock.now())


async def test_labels_are_stored_and_filter_lists(hive: Core) -> None:
    a = await hive.tasks.submit(TaskSubmit(type="x", labels={"team": "infra", "env": "prod"}))
    b = await hive.tasks.submit(TaskSubmit(type="x", labels={"team": "infra"}))
    await hive.tasks.submit(TaskSubmit(type="x"))
    assert (await hive.tasks.get(a.id)).labels == {"team": "infra", "env": "prod"}
    infra, total = await hive.tasks.list(labels={"team": "infra"})
    assert ({t.id for t in infra}, total) == ({a.id, b.id}, 2)
    prod, _ = await hive.tasks.list(labels={"team": "infra", "env": "prod"})
    assert [t.id for t in prod] == [a.id]
    assert (await hive.tasks.list(labels={"team": "web"}))[1] == 0


async def test_bulk_cancel_and_retry(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 1)
    running = await hive.submit("x", labels={"batch": "1"})
    [lease] = await hive.lease("a")
    assert (await hive.task(running))["status"] == "running"  # (marked once the mark is flushed)
    queued = [await hive.submit("x", labels={"batch": "1"}) for _ in range(3)]
    other = await hive.submit("x", labels={"batch": "2"})
    done = await hive.tasks.bulk("cancel", BulkRequest(status="pending", labels={"batch": "1"}, limit=2))
    assert (done.matched, done.changed, done.remaining) == (3, queued[:2], 1)
    done = await hive.tasks.bulk("cancel", BulkRequest(status="running", type="x"))
    assert done.changed == [running]
    assert (await hive.dispatcher.report("a", [result(lease)]))[0].accepted is False
    retried = await hive.tasks.bulk("retry", BulkRequest(status="cancelled", labels={"batch": "1"}))
    assert sorted(retried.changed) == sorted([running, *queued[:2]])
    assert {(await hive.task(t))["status"] for t in retried.changed} == {"pending"}
    assert (await hive.task(other))["status"] == "pending"
    with pytest.raises(Invalid, match="status: retry takes tasks that are failed, cancelled"):
        await hive.tasks.bulk("retry", BulkRequest(status="pending"))


async def test_a_pause_by_workflow_holds_the_tasks_of_its_runs(hive: Core) -> None:
    from tests.unit.test_workflow_engine import start

    hive.dispatcher.attach("w", [], 10)
    await hive.tasks.controls.pause(PauseSelector(workflow="ship"))
    run_id = await start(hive, {"name": "ship", "steps": [{"id": "build", "type": "build"}]})
    plain = await hive.submit("build")
    assert [lease.task_id for lease in await hive.lease("w")] == [plain]
    [step_task] = [t for t in (await hive.tasks.list(run=run_id))[0]]
    assert step_task.waiting_reason == "paused (workflow ship)"
    await hive.tasks.controls.resume(ResumeRequest(workflow="ship"))
    assert [lease.task_id for lease in await hive.lease("w")] == [step_task.id]
