"""Schedules in this process on a FakeClock, with the real engine, task service and store: a
`*/1 * * * *` schedule starts a run a minute, the overlap policies hold while a run is slow, a start
missed while hived was down is caught up once within `catchup`, and pause, resume and trigger."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

from hived.errors import Invalid, NotFound
from hived.events import ScheduleFired
from hived.model.schedules import ScheduleSpec
from hived.model.workflow import WorkflowSpec
from hived.schedules.service import SchedulesService
from hived.store import workflows as store
from hived.workflows.service import WorkflowService
from tests.unit.inprocess import ChangedDuringRead, Core, done


@pytest.fixture
async def schedules(hive: Core) -> Any:
    workflows = WorkflowService(hive.db, hive.engine)
    await workflows.apply(
        WorkflowSpec.model_validate(
            {"name": "tick", "params": {"n": 1}, "steps": [{"id": "job", "type": "job"}]}
        )
    )
    service = SchedulesService(hive.db, workflows, hive.tasks, hive.events, hive.clock)
    yield service
    await service.stop()


def every_minute(overlap: str = "skip", **fields: Any) -> ScheduleSpec:
    return ScheduleSpec.model_validate(
        {"name": "minutely", "workflow": "tick", "cron": "*/1 * * * *", "overlap": overlap, **fields}
    )


async def runs(hive: Core) -> list[dict[str, Any]]:
    await hive.db.write(lambda c: None)
    rows, _ = await hive.db.read(lambda c: store.list_runs(c, None, "tick", 100, 0))
    return sorted(rows, key=lambda r: r["created_at"])


async def minute(hive: Core, schedules: SchedulesService) -> int:
    """A minute passes; the due starts are made; returns how many."""
    await hive.clock.advance(60)
    return await schedules.run_due()


async def test_a_minutely_schedule_starts_a_run_a_minute_and_skip_holds_while_one_is_slow(
    hive: Core, schedules: SchedulesService
) -> None:
    fired: list[ScheduleFired] = []
    hive.events.subscribe(ScheduleFired, fired.append)
    applied = await schedules.apply(every_minute())
    assert applied.action == "created"
    assert (await schedules.apply(every_minute())).action == "unchanged"
    info = schedules.info("minutely")
    assert info.next_run_at == hive.clock.now() + timedelta(minutes=1)
    assert await schedules.run_due() == 0
    for n in (1, 2, 3):  # three minutes, three runs, each done before the next
        await minute(hive, schedules)
        assert len(await runs(hive)) == n
        assert await hive.burst(done) == 1
    assert [r["status"] for r in await runs(hive)] == ["succeeded"] * 3
    await minute(hive, schedules)  # the 4th run is slow: nobody works on it
    slow = (await runs(hive))[-1]
    assert schedules.info("minutely").running == slow["id"]
    for _ in range(3):
        await minute(hive, schedules)
    assert len(await runs(hive)) == 4  # skipped three times
    assert (await schedules.trigger("minutely")).action == "skipped"
    await hive.burst(done)
    assert schedules.info("minutely").running is None
    await minute(hive, schedules)
    assert len(await runs(hive)) == 5
    actions = [event.action for event in fired]
    assert actions == ["started"] * 4 + ["skipped"] * 4 + ["started"]
    assert fired[-1].kind == "schedule.started" and fired[-1].id == (await runs(hive))[-1]["id"]


async def test_queue_starts_the_waiting_ones_when_the_slow_run_ends(
    hive: Core, schedules: SchedulesService
) -> None:
    await schedules.apply(every_minute("queue"))
    await minute(hive, schedules)
    await minute(hive, schedules)
    await minute(hive, schedules)
    assert len(await runs(hive)) == 1 and schedules.info("minutely").queued == 2
    await hive.burst(done)  # the first ends; one queued start follows per end
    await hive.clock.advance(1)
    assert await schedules.run_due() == 1
    assert len(await runs(hive)) == 2 and schedules.info("minutely").queued == 1


async def test_cancel_previous_cancels_the_slow_run(hive: Core, schedules: SchedulesService) -> None:
    await schedules.apply(every_minute("cancel_previous"))
    await minute(hive, schedules)
    await minute(hive, schedules)
    await hive.engine.idle()
    first, second = await runs(hive)
    assert (first["status"], second["status"]) == ("cancelled", "running")
    assert schedules.info("minutely").running == second["id"]


async def test_the_loop_starts_runs_at_the_cron_times(hive: Core, schedules: SchedulesService) -> None:
    await schedules.apply(every_minute())
    schedules.start()
    for n in (1, 2, 3):
        await hive.clock.until_sleeping()
        await hive.clock.advance(60)
        deadline = time.monotonic() + 10
        while len(await runs(hive)) < n:  # the loop's start commits in the database's thread
            assert time.monotonic() < deadline, f"run {n} did not start"
            await asyncio.sleep(0.01)
        await hive.burst(done)
    assert len(await runs(hive)) == 3


@pytest.mark.parametrize(
    ("back", "catchup", "caught"),
    [(90, "1h", 1), (150, "1h", 1), (90, "10m", 0), (90, 0, 0), (55, "1h", 0)],
)
async def test_a_start_missed_while_down_is_caught_up_once_within_catchup(
    hive: Core, schedules: SchedulesService, back: int, catchup: Any, caught: int
) -> None:
    """Hourly, applied at 00:00; hived goes down and starts again `back` minutes later (150: both
    01:00 and 02:00 were missed; one start catches them up)."""
    spec = {"name": "hourly", "workflow": "tick", "cron": "0 * * * *", "catchup": catchup}
    await schedules.apply(ScheduleSpec.model_validate(spec))
    await hive.clock.advance(back * 60)
    again = SchedulesService(hive.db, schedules.workflows, hive.tasks, hive.events, hive.clock)
    await again.load()
    assert len(await runs(hive)) == caught
    assert again.info("hourly").next_run_at == hive.clock.now().replace(minute=0) + timedelta(hours=1)


async def test_pause_resume_trigger_and_bad_definitions(hive: Core, schedules: SchedulesService) -> None:
    await schedules.apply(every_minute())
    paused = await schedules.pause("minutely", True)
    assert paused.paused
    await minute(hive, schedules)
    assert await runs(hive) == []
    fired = await schedules.trigger("minutely")  # an operator's start goes even when paused
    assert fired.action == "started" and (await runs(hive))[0]["id"] == fired.id
    resumed = await schedules.pause("minutely", False)
    assert not resumed.paused and resumed.next_run_at > hive.clock.now()
    with pytest.raises(NotFound, match="workflow 'nope'"):
        await schedules.apply(ScheduleSpec(name="x", workflow="nope", cron="* * * * *"))
    with pytest.raises(Invalid, match="params: unknown param 'm'"):
        await schedules.apply(ScheduleSpec(name="x", workflow="tick", cron="* * * * *", params={"m": 1}))
    with pytest.raises(NotFound, match="schedule 'ghost' not found"):
        schedules.info("ghost")
    assert (await schedules.delete("minutely")).name == "minutely"
    assert schedules.list() == []


async def test_a_task_schedule_submits_a_task_and_skips_while_it_is_unfinished(
    hive: Core, schedules: SchedulesService
) -> None:
    spec = {"name": "reports", "task": {"type": "report", "payload": {"n": 1}}, "cron": "*/1 * * * *"}
    await schedules.apply(ScheduleSpec.model_validate(spec))
    await minute(hive, schedules)
    first = schedules.info("reports").running
    assert first is not None and schedules.info("reports").task == "report"
    assert (await hive.task(first))["payload"] == {"n": 1}
    await minute(hive, schedules)
    assert schedules.info("reports").last_run_id == first  # skipped: the task is still pending
    assert await hive.burst(done) == 1
    assert schedules.info("reports").running is None
    await minute(hive, schedules)
    second = schedules.info("reports").running
    assert second not in (None, first)

    async def read(self, fn: Any) -> Any:
        rows = await self.db.read(fn)
        self.reads += 1
        if self.reads == 1:
            await self.change()  # this node changes a schedule after those rows were read
        return rows


async def test_a_reload_that_read_before_a_change_here_does_not_undo_it(
    hive: Core, schedules: SchedulesService
) -> None:
    # (a node of a cluster reloads the schedules while its own API applies one: issue 19)
    spec = ScheduleSpec.model_validate({"name": "new", "task": {"type": "report"}, "cron": "*/1 * * * *"})
    schedules.db = ChangedDuringRead(hive.db, lambda: schedules.apply(spec))
    await schedules.reload()
    assert schedules.db.reads == 2  # the stale rows were dropped and read again
    assert schedules.info("new").task == "report"  # not forgotten as "deleted on another node"
    schedules.db = hive.db
    await schedules.pause("new", True)
    schedules.db = ChangedDuringRead(hive.db, lambda: schedules.pause("new", False))
    await schedules.reload()
    assert schedules.info("new").paused is False
