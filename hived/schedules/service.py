"""The schedules service: defines schedules (`kind: Schedule`, `PUT /schedules/{name}`), shows them,
pauses, resumes and triggers them, and runs the timer that starts their workflows (or tasks) at the
times of their cron expressions, on the daemon's clock.

Each schedule remembers the run (or task) it started last; while that one goes, a new start follows
the schedule's overlap policy (hived.schedules.rules). The next start time is stored, so a time missed
while hived was down is known when it starts again, and caught up once within `catchup`. SQL stays
in hived.store.schedules."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hived.clock import SYSTEM_CLOCK, Clock
from hived.errors import Conflict, HiveError, Invalid, NotFound
from hived.events import EventBus, RunChanged, ScheduleFired, TaskEnded
from hived.model.schedules import AppliedSchedule, Fired, ScheduleInfo, ScheduleSpec
from hived.model.states import FINAL_RUN, FINAL_TASK
from hived.model.workflow import ParamError, coerce_params
from hived.schedules.rules import next_fire, on_overlap, on_start
from hived.store import schedules as store
from hived.store.db import Database
from hived.tasks.service import TaskService
from hived.workflows.service import WorkflowService

log = logging.getLogger("hived.schedules")
RETRY_DELAY = 1.0  # s: after a failed write, the loop tries again this much later
SHOWN = {"name", "workflow", "params", "cron", "timezone", "overlap", "catchup"}


@dataclass
class Scheduled:
    """A schedule as the service holds it; `running` is the run (or task) it started that still goes."""

    spec: ScheduleSpec
    paused: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_run_id: str | None
    queued: int
    created_at: datetime
    updated_at: datetime
    last_error: str | None = None
    running: str | None = None  # set through SchedulesService._run_by (kept in its index)

    def state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in store.STATE}

    def info(self) -> ScheduleInfo:
        spec = self.spec
        return ScheduleInfo(
            **spec.model_dump(include=SHOWN),
            task=spec.task.type if spec.task else None,
            **self.state(),
            running=self.running,
            last_error=self.last_error,
            created_at=self.created_at,
        )


class SchedulesService:
    def __init__(
        self,
        db: Database,
        workflows: WorkflowService,
        tasks: TaskService,
        events: EventBus,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.db = db
        self.events = events
        self.workflows = workflows
        self.tasks = tasks
        self.clock = clock
        self.schedules: dict[str, Scheduled] = {}
        self.changed = asyncio.Event()  # a schedule was defined, resumed, or a queued start may go
        self._loop: asyncio.Task[None] | None = None
        self._starting = 0
        self._ended_while_starting: set[str] = set()
        self._running: dict[str, Scheduled] = {}  # run (or task) id -> the schedule that started it
        # Several nodes (hived.nodes): whether this node makes the start due at that time (one does).
        self.exclusive: Callable[[str, datetime, datetime | None], Awaitable[bool]] | None = None
        self.announce: Callable[[str], Awaitable[None]] | None = None  # tells the other nodes of a change
        self.local_changes = 0  # counts this node's changes: a reload that read before one drops its rows
        events.subscribe(RunChanged, self._run_changed)
        events.subscribe(TaskEnded, lambda ended: self._ended(ended.task_id))

    # --- life -------------------------------------------------------------------------------------

    async def load(self) -> int:
        """Every stored schedule; a start missed while hived was down is made now (within catchup)."""
        rows = await self.db.read(store.load_schedules)
        now = self.clock.now()
        for row in rows:
            spec = ScheduleSpec.model_validate(row["definition"])
            fields = {k: row[k] for k in (*store.STATE, "created_at")}
            self.schedules[spec.name] = Scheduled(spec, **fields)
        await self._find_running()
        caught = []
        for item in self.schedules.values():
            if item.paused:
                continue
            spec = item.spec
            catch, item.next_run_at = on_start(spec.cron, spec.timezone, item.next_run_at, now, spec.catchup)
            await self._save(item)
            if catch:
                caught.append(item)
        for item in caught:
            log.info("schedule %s: catching up a start missed while hived was down", item.spec.name)
            await self.fire(item)
        return len(rows)

    async def _find_running(self) -> None:
        """Which of the runs (and tasks) the schedules started last still go."""
        for of_tasks in (False, True):
            last = {
                s.last_run_id: s
                for s in self.schedules.values()
                if s.last_run_id and (s.spec.task is not None) == of_tasks
            }
            statuses = await self.db.read(lambda c, ids=list(last), t=of_tasks: store.status_of(c, ids, t))
            final = FINAL_TASK if of_tasks else FINAL_RUN
            for run_id, status in statuses.items():
                if status not in final:
                    self._run_by(last[run_id], run_id)

    def start(self) -> None:
        self._loop = asyncio.create_task(self._follow(), name="schedules")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    # --- definitions ------------------------------------------------------------------------------

    async def apply(self, spec: ScheduleSpec) -> AppliedSchedule:
        """Create or change a schedule; its workflow must exist and take its params."""
        if spec.workflow is not None:
            workflow = await self.workflows.resolve(spec.workflow)
            try:
                coerce_params(workflow["definition"].get("params", {}), spec.params)
            except ParamError as exc:
                raise Invalid(f"params: {exc}") from None
        now = self.clock.now()
        current = self.schedules.get(spec.name)
        if current is not None and current.spec == spec:
            return AppliedSchedule(name=spec.name, action="unchanged")
        definition = spec.model_dump(mode="json", exclude_none=True)
        following = next_fire(spec.cron, spec.timezone, now)
        if current is None:
            item = Scheduled(spec, False, following, None, None, 0, now, now)
            row = {"name": spec.name, "definition": definition, **item.state(), "created_at": now}
            await self.db.write(lambda c: store.insert_schedule(c, row))
        else:
            item = current
            item.spec, item.updated_at = spec, now
            item.next_run_at = following if not item.paused else item.next_run_at
            values = {"definition": definition, **item.state()}
            await self.db.write(lambda c: store.update_schedule(c, spec.name, values))
        self.schedules[spec.name] = item
        self.local_changes += 1
        self.changed.set()
        await self._announce(spec.name)
        return AppliedSchedule(name=spec.name, action="created" if current is None else "configured")

    async def delete(self, name: str) -> ScheduleInfo:
        item = self._get(name)
        await self.db.write(lambda c: store.delete_schedule(c, name))
        self.schedules.pop(name, None)
        self.local_changes += 1
        self._run_by(item, None)
        await self._announce(name)
        return item.info()

    async def _announce(self, name: str) -> None:
        if self.announce is not None:
            await self.announce(name)

    async def reload(self) -> bool:
        """The schedules as the database has them (hived.nodes): one applied, changed, paused or
        deleted on another node is so here too. Returns whether anything changed. Rows read while
        this node changed a schedule are older than its memory: read again (at most 3 times, then
        the next reload)."""
        for _ in range(3):
            before = self.local_changes
            rows = await self.db.read(store.load_schedules)
            if self.local_changes == before:
                break
        else:
            return False
        stored = {row["name"]: row for row in rows}
        changed = False
        for name, row in stored.items():
            item = self.schedules.get(name)
            if item is not None and (item.updated_at, item.paused) == (row["updated_at"], row["paused"]):
                continue
            spec = ScheduleSpec.model_validate(row["definition"])
            if item is None:
                self.schedules[name] = Scheduled(spec, **{k: row[k] for k in (*store.STATE, "created_at")})
            else:
                item.spec = spec
                for field in store.STATE:
                    setattr(item, field, row[field])
            changed = True
        for name in [n for n in self.schedules if n not in stored]:
            self._run_by(self.schedules.pop(name), None)
            changed = True
        if changed:
            self.changed.set()
        return changed

    # --- reads and verbs --------------------------------------------------------------------------

    def list(self) -> list[ScheduleInfo]:
        return [self.schedules[name].info() for name in sorted(self.schedules)]

    def info(self, name: str) -> ScheduleInfo:
        return self._get(name).info()

    def _get(self, name: str) -> Scheduled:
        item = self.schedules.get(name)
        if item is None:
            raise NotFound(f"schedule {name!r} not found")
        return item

    async def pause(self, name: str, paused: bool) -> ScheduleInfo:
        """Pause (no start until resumed) or resume: the next start is the cron's next time from now;
        times that passed while it was paused are not caught up."""
        item = self._get(name)
        if item.paused != paused:
            item.paused = paused
            if not paused:
                item.next_run_at = next_fire(item.spec.cron, item.spec.timezone, self.clock.now())
            await self._save(item)
            self.changed.set()
            await self._announce(name)
        return item.info()

    async def trigger(self, name: str) -> Fired:
        """Start now, as at a cron time (the overlap policy holds; a paused schedule starts too)."""
        return await self.fire(self._get(name))

    # --- starting ---------------------------------------------------------------------------------

    async def fire(self, item: Scheduled) -> Fired:
        """A start time came: start, skip, queue, or cancel the previous one and start."""
        fired = await self._fire(item)
        self.events.publish(ScheduleFired(fired.name, fired.action, fired.id, fired.error))
        return fired

    async def _fire(self, item: Scheduled) -> Fired:
        name = item.spec.name
        action = on_overlap(item.spec.overlap, item.running is not None, item.queued)
        if action == "skip":
            log.info("schedule %s: skipped, %s still runs (overlap: skip)", name, item.running)
            await self._save(item)
            return Fired(name=name, action="skipped", id=item.running)
        if action == "queue":
            item.queued += 1
            await self._save(item)
            return Fired(name=name, action="queued", id=item.running)
        if action == "cancel_previous" and item.running is not None:
            await self._cancel(item, item.running)
        return await self._start(item)

    async def _start(self, item: Scheduled) -> Fired:
        name, now = item.spec.name, self.clock.now()
        self._starting += 1
        try:
            started = await self._submit(item.spec)
        except HiveError as exc:
            item.last_error = str(exc)
            log.warning("schedule %s: could not start: %s", name, exc)
            await self._save(item)
            return Fired(name=name, action="failed", error=str(exc))
        finally:
            self._starting -= 1
        ended = started in self._ended_while_starting
        if not self._starting:
            self._ended_while_starting.clear()
        self._run_by(item, None if ended else started)
        item.last_run_id, item.last_run_at, item.last_error = started, now, None
        await self._save(item)
        log.info("schedule %s: started %s", name, started)
        return Fired(name=name, action="started", id=started)

    async def _submit(self, spec: ScheduleSpec) -> str:
        if spec.workflow is not None:
            return (await self.workflows.execute(spec.workflow, spec.params)).id
        assert spec.task is not None
        return (await self.tasks.submit(spec.task)).id

    async def _cancel(self, item: Scheduled, running: str) -> None:
        with contextlib.suppress(Conflict, NotFound):  # it ended meanwhile
            if item.spec.task is not None:
                await self.tasks.cancel(running)
            else:
                await self.workflows.cancel(running)
        self._run_by(item, None)

    def _run_changed(self, changed: RunChanged) -> None:
        if changed.status in FINAL_RUN:
            self._ended(changed.run_id)

    def _ended(self, ended_id: str) -> None:
        """A run or task ended: the schedule that started it may start a queued one."""
        if self._starting:
            self._ended_while_starting.add(ended_id)
        item = self._running.get(ended_id)  # one lookup: every task's end comes here
        if item is not None:
            self._run_by(item, None)
            if item.queued:
                self.changed.set()

    def _run_by(self, item: Scheduled, running: str | None) -> None:
        if item.running is not None:
            self._running.pop(item.running, None)
        item.running = running
        if running is not None:
            self._running[running] = item

    async def _save(self, item: Scheduled) -> None:
        item.updated_at = self.clock.now()
        self.local_changes += 1
        await self.db.write(lambda c: store.update_schedule(c, item.spec.name, item.state()))

    # --- the timer --------------------------------------------------------------------------------

    async def run_due(self) -> int:
        """Start every schedule whose time has come, and queued starts whose previous run ended;
        returns how many were handled (in-process tests call it; the loop does in hived)."""
        now, handled = self.clock.now(), 0
        for item in list(self.schedules.values()):
            if item.paused or item.next_run_at is None:
                continue
            if item.next_run_at <= now:
                due, item.next_run_at = item.next_run_at, next_fire(item.spec.cron, item.spec.timezone, now)
                if self.exclusive is None or await self.exclusive(item.spec.name, due, item.next_run_at):
                    await self.fire(item)
                handled += 1
            elif item.queued and item.running is None:
                item.queued -= 1
                fired = await self._start(item)
                self.events.publish(ScheduleFired(fired.name, fired.action, fired.id, fired.error))
                handled += 1
        return handled

    def next_wake(self) -> float | None:
        """Seconds until the earliest start of an active schedule (None: none is due ever)."""
        times = [s.next_run_at for s in self.schedules.values() if not s.paused and s.next_run_at]
        if not times:
            return None
        return max((min(times) - self.clock.now()).total_seconds(), 0.001)

    async def _follow(self) -> None:
        while True:
            self.changed.clear()
            try:
                await self.run_due()
            except Exception:
                log.exception("schedules: starting failed; trying again")
                await self.clock.sleep(RETRY_DELAY)
                continue
            await self.clock.wait(self.changed, self.next_wake())
