"""The workflow engine: runs steps as tasks when their needs are done, and keeps every decision in the
database in the same commit as the tasks it creates, so a run resumes where it was after `kill -9`.

Each active run lives in memory as a `LiveRun`. Everything that happens to a run (a step's task
ended, an approval, a cancel, a timeout) goes through its inbox; one drain task per run applies what
has arrived, decides the next moves (hived.model.graph), and writes steps, new tasks and the run status
in one transaction. Completions of many steps therefore batch into few commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hived.clock import SYSTEM_CLOCK, Clock
from hived.errors import Conflict, HiveError
from hived.events import EventBus, RunChanged, StepChanged, TaskAssigned, TaskEnded
from hived.model.expressions import ExpressionError, is_true
from hived.model.schemas import TaskSubmit
from hived.model.states import FINAL_TASK, RunStatus
from hived.model.workflow import StepSpec
from hived.slices import sliced
from hived.store import tasks as task_store
from hived.store import workflow_links as links
from hived.store import workflows as store
from hived.store.db import Database, DatabaseUnavailable
from hived.workflows.approvals import reworked
from hived.workflows.children import Children
from hived.workflows.deadlines import Deadlines
from hived.workflows.fanout import FanOuts
from hived.workflows.live import (
    Change,
    LiveRun,
    S,
    decision,
    may_fail,
    step_task,
    task_ended,
)
from hived.workflows.outputs import succeed
from hived.workflows.rules import next_moves, run_outcome
from hived.workflows.starting import Origin, new_run
from hived.workflows.templates import render
from hived.workflows.waits import Waits, signalled, waiting_for
from hived.workflows.watch import RunWatchers

log = logging.getLogger("hived.workflows")


class WorkflowEngine:
    def __init__(
        self,
        db: Database,
        events: EventBus,
        new_task_row: Callable[[TaskSubmit, str], dict[str, Any]],
        accepted: Callable[[dict[str, Any]], None],
        cancel_task: Callable[[str], Any],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.db, self.events = db, events
        self._new_task_row, self._accepted, self._cancel_task = new_task_row, accepted, cancel_task
        self.driver: str | None = None  # this node (hived.nodes): it drives the runs it starts
        self.runs: dict[str, LiveRun] = {}
        self.by_task: dict[str, tuple[str, str]] = {}  # task id -> (run id, step id)
        self._reloading = 0
        self._unclaimed: dict[str, tuple[str, dict[str, Any]]] = {}  # tasks that ended during a reload
        self._tasks: set[asyncio.Future[Any]] = set()
        self.clock = clock
        self.deadlines = Deadlines(self.runs, clock, self.deliver)
        self.waits = Waits(self.runs, clock, self.deliver)  # sleep, wait_for, approval timeouts
        self.watchers = RunWatchers(clock)
        self.fanouts = FanOuts(new_task_row)  # for_each steps
        self.children = Children(self)  # workflow: steps
        self.budget_gate: Callable[..., bool] | None = None  # hived.usage.budgets: True holds a step back
        events.subscribe(TaskAssigned, self.task_assigned)

    # --- life -------------------------------------------------------------------------------------

    async def load(self, run_id: str | None = None) -> int:
        """Resume the runs the last daemon left active (or one run, after a failed write); tasks
        that ended meanwhile count now."""
        rows, steps, specs, tasks = await self.db.read(lambda c: store.runs_to_resume(c, run_id, self.driver))
        items = await self.db.read(lambda c: {r["id"]: links.item_tasks(c, r["id"]) for r in rows})
        for row in rows:
            run = LiveRun.from_rows(row, steps[row["id"]], specs[row["workflow_id"]])
            self._add(run)
            self.waits.rearm(run)
            for step in run.steps.values():
                if step.status == S.RUNNING and step.task_id:
                    task = tasks.get(step.task_id)
                    if task is not None and task["status"] in FINAL_TASK:
                        run.inbox.append(task_ended(step.id, step.task_id, task["status"], task))
                    else:
                        self._follow(run, step.id, step.task_id)
            self.fanouts.resume(run, items[run.id], functools.partial(self._follow, run))
            self.children.resume(run)
            self._kick(run)
        return len(rows)

    def _follow(self, run: LiveRun, step_id: str, task_id: str) -> None:
        """Hear of the end of a step's task (at once if it ended during the read)."""
        if ended := self._unclaimed.pop(task_id, None):
            run.inbox.append(task_ended(step_id, task_id, *ended))
        else:
            self.by_task[task_id] = (run.id, step_id)

    async def _reload(self, run_id: str) -> None:
        """After a failed write the run's memory may be ahead of the database: drop it and read it
        again (retrying while the database is away). Tasks that end meanwhile are kept aside."""
        self._reloading += 1
        try:
            delay = 1.0
            while True:
                await self.clock.sleep(delay)
                try:
                    await self.load(run_id)
                    return
                except DatabaseUnavailable as exc:
                    log.warning("workflow run %s: reading it again failed (%s); retrying", run_id, exc)
                except Exception:
                    log.exception("workflow run %s: reading it again failed; retrying", run_id)
                    delay = min(delay * 2, 30.0)
        finally:
            self._reloading -= 1
            if not self._reloading:
                self._unclaimed.clear()

    def start(self) -> None:
        self._background(self.deadlines.follow())  # run timeouts
        self._background(self.waits.follow())

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.events.unsubscribe(TaskAssigned, self.task_assigned)
        self.children.stop()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for run in list(self.runs.values()):
            if run.draining:
                with contextlib.suppress(Exception):
                    await run.draining

    async def idle(self) -> None:
        """Wait until no run has work pending (tests and benchmarks)."""
        while any(r.draining for r in self.runs.values()):
            await asyncio.gather(*(r.draining for r in self.runs.values() if r.draining))

    # --- starting, deciding, cancelling -----------------------------------------------------------

    async def start_run(
        self, workflow: dict[str, Any], params: dict[str, Any], origin: Origin | None = None
    ) -> str:
        run, row, step_rows = new_run(workflow, params, self.clock.now(), origin)
        row["driver"] = self.driver
        await self.db.write(lambda c: store.insert_run(c, row, step_rows))
        self._add(run)
        self._kick(run)
        return run.id

    def _add(self, run: LiveRun) -> None:
        self.runs[run.id] = run
        if run.deadline is not None:
            self.deadlines.changed.set()

    def task_ended(self, ended: TaskEnded) -> None:
        """Subscriber of TaskEnded on the bus: a step's task reached a final state."""
        self.task_finished(ended.task_id, ended.status, ended.row())

    def task_finished(self, task_id: str, status: str, row: dict[str, Any]) -> None:
        """A task reached a final state (`row`: its agent_id, error, result)."""
        if status not in FINAL_TASK:
            return
        found = self.by_task.pop(task_id, None)
        if found is None:
            if self._reloading:
                self._unclaimed[task_id] = (status, row)
            return
        run = self.runs.get(found[0])
        if run is not None:
            run.inbox.append(task_ended(found[1], task_id, status, row))
            self._kick(run)

    def task_assigned(self, assigned: TaskAssigned) -> None:
        """Subscriber of TaskAssigned: a step's task went to an agent, which the run shows. The
        revision counts it (written with the run's next change)."""
        if (found := self.by_task.get(assigned.task_id)) and (run := self.runs.get(found[0])):
            run.revision += 1
            self.watchers.notify(run.id)

    async def changed(self, run_id: str, since: int, timeout: float) -> None:
        """Return once the run's revision is not `since` (at once when it is not, or when this hived
        does not drive the run: it has ended), or after `timeout` s."""
        run = self.runs.get(run_id)
        if run is not None and run.revision == since and not run.done:
            await self.watchers.wait(run_id, timeout)

    def revision(self, run_id: str) -> int | None:
        """The revision of a run this hived drives (None: read the stored one)."""
        run = self.runs.get(run_id)
        return run.revision if run is not None else None

    async def decide(
        self, run_id: str, step_id: str, approve: bool, by: str, comment: str | None,
        rework: str | None = None,
    ) -> None:
        run = self._active(run_id, "decide on")
        step = run.steps.get(step_id)
        if step is None:
            raise Conflict(f"run {run_id} has no step {step_id!r}")
        if step.status != S.WAITING or step.decided_by is not None:
            raise Conflict(f"step {step_id!r} of run {run_id} is {step.status}, not waiting for approval")
        if rework is None:
            change = decision(step_id, approve, by, comment)
        else:
            change = reworked(run, step_id, rework, by, comment)  # refused here if it cannot be done
        step.decided_by = by  # claimed now, so a second decision in the same instant is refused
        run.inbox.append(change)
        await self._kick_and_wait(run)

    async def signal(self, run_id: str, name: str, data: Any) -> list[str]:
        """Signal `name` to a run: the steps waiting for it succeed with `data` (returns their ids)."""
        run = self._active(run_id, "signal")
        step_ids = waiting_for(run, name)
        run.inbox.append(signalled(step_ids, data))
        await self._kick_and_wait(run)
        return step_ids

    async def cancel(self, run_id: str) -> None:
        run = self._active(run_id, "cancel")
        run.inbox.append(lambda r, now: r.end(RunStatus.CANCELLED, "cancelled by operator", now))
        await self._kick_and_wait(run)

    def _active(self, run_id: str, verb: str) -> LiveRun:
        run = self.runs.get(run_id)
        if run is None or run.done:
            raise Conflict(f"cannot {verb} run {run_id}: it has finished")
        return run

    # --- the drain: apply what arrived, decide, write, then act -----------------------------------

    def _kick(self, run: LiveRun) -> None:
        if run.draining is None:
            run.draining = asyncio.create_task(self._drain(run), name=f"run-{run.id[:8]}")

    async def _kick_and_wait(self, run: LiveRun) -> None:
        self._kick(run)
        while run.draining is not None:
            await asyncio.shield(run.draining)

    async def _drain(self, run: LiveRun) -> None:
        try:
            while True:
                await self._step(run)
                if not run.inbox:
                    break
        except Exception as exc:
            if isinstance(exc, DatabaseUnavailable):
                log.warning("workflow run %s: %s; reading the run again when it is back", run.id, exc)
            else:
                log.exception("workflow run %s: a write failed; reading the run again", run.id)
            self.runs.pop(run.id, None)
            self.by_task = {t: found for t, found in self.by_task.items() if found[0] != run.id}
            self._background(self._reload(run.id))
            run.draining = None
            self.watchers.notify(run.id)
            return
        run.draining = None
        if run.inbox and not run.done:
            self._kick(run)
        elif run.done:
            self.runs.pop(run.id, None)
            self.watchers.notify(run.id)

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _step(self, run: LiveRun) -> None:
        now = self.clock.now()
        inbox, run.inbox = run.inbox, []
        for change in inbox:
            if not run.done:
                change(run, now)
        new_tasks: list[tuple[str, dict[str, Any]]] = []
        if not run.done and run.status != RunStatus.PAUSED:  # a paused run starts nothing
            if run.status == RunStatus.PENDING:
                run.move(RunStatus.RUNNING)
                run.run_values.update(status=RunStatus.RUNNING, started_at=now)
            new_tasks = await sliced(self._advance, run, now)  # CEL's evaluation pauses in it
        changed = run.take_changed()
        values, run.run_values = run.run_values, {}
        cancels, run.cancel_tasks = run.cancel_tasks, []
        rows = [s.row() for s in changed]
        if rows or values or new_tasks:
            # One transaction: the steps that ended, the steps they unblocked with their new tasks,
            # and the run (its status, its revision). A kill -9 sees all of it or none.
            written = {**values, "revision": run.revision + 1}

            def write(conn: Any) -> None:
                task_store.insert_tasks(conn, [task for _, task in new_tasks])
                store.update_steps(conn, run.id, rows)
                store.update_run(conn, run.id, written)

            await self.db.write(write)
            run.revision += 1
            self.watchers.notify(run.id)
        for step_id, task in new_tasks:
            self.by_task[task["id"]] = (run.id, step_id)
            self._accepted(task)
        for step in changed:
            self.events.publish(StepChanged(run.id, step.id, str(step.status), step.task_id, step.agent_id))
        if "status" in values:
            self.events.publish(RunChanged(run.id, run.workflow, str(values["status"])))
        for task_id in cancels:
            self.by_task.pop(task_id, None)
            await self._cancel_task(task_id)

    def _advance(self, run: LiveRun, now: datetime) -> list[tuple[str, dict[str, Any]]]:
        """Start or skip every step that can move, until nothing more can; then settle the run.
        Only candidates are looked at (the steps needing one that just ended), so a step costs the
        same in a run of 5 steps or of 5,000. Returns the new tasks as (step id, task row)."""
        new_tasks = self.fanouts.fill(run, now)  # items of running for_each steps whose turn came
        graph = run.graph
        while run.candidates:
            nodes = [graph.nodes[sid] for sid in sorted(run.candidates, key=graph.position.__getitem__)]
            run.candidates.clear()
            start, skip = next_moves(nodes, run.statuses, graph.nodes)
            for sid in skip:
                run.steps[sid].finish(S.SKIPPED, now, "a step it needs did not succeed")
            for sid in start:
                new_tasks += [(sid, task) for task in self._start_step(run, graph.specs[sid], now)]
        looked_at = [graph.nodes[sid] for sid in run.changed] if run.checked else list(graph.nodes.values())
        run.checked = True
        outcome = run_outcome(looked_at, run.statuses, len(run.unfinished))
        if outcome == RunStatus.FAILED:
            failed = next(
                s for s in run.steps.values() if s.status in (S.FAILED, S.CANCELLED) and not may_fail(run, s)
            )
            new_ids = {t["id"] for _, t in new_tasks}
            new_tasks = []
            for step in run.steps.values():  # tasks created in this pass are never submitted
                if step.task_id in new_ids:
                    step.task_id = None
            why = f"step {failed.id!r} {failed.status}: {failed.error or ''}".strip()
            run.end(RunStatus.FAILED, why, now)
        elif outcome == RunStatus.SUCCEEDED:
            succeed(run, now)
        return new_tasks

    def _start_step(self, run: LiveRun, spec: StepSpec, now: datetime) -> list[dict[str, Any]]:
        """The tasks that start the step (none for a gate, a sub-workflow, or a step that ended)."""
        step = run.steps[spec.id]
        if self.budget_gate is not None and self.budget_gate(run, spec, step, now):
            return []  # a paused run, or an estimate over its budget left
        fanned = spec.for_each is not None or spec.workflow is not None
        variables = run.variables() if spec.id in run.graph.templated or fanned else {}
        try:
            if spec.when is not None and not is_true(spec.when, variables):
                step.finish(S.SKIPPED, now, "when was false")
                return []
            step.started_at = now
            if spec.for_each is not None:
                return self.fanouts.start(run, spec, variables, now)
            if spec.workflow is not None:
                self.children.start(run, spec, variables, now)
                return []
            payload = render(spec.payload, variables)
        except ExpressionError as exc:
            step.finish(S.FAILED, now, str(exc))
            return []
        if self.waits.begin(run, spec, payload):
            return []
        if not isinstance(payload, dict):
            step.finish(S.FAILED, now, "payload must render to a mapping")
            return []
        try:
            task = self._new_task_row(step_task(spec, payload, run), run.id)
        except HiveError as exc:  # a rendered payload over max_payload_bytes
            step.finish(S.FAILED, now, str(exc))
            return []
        step.move(S.RUNNING)
        step.task_id = task["id"]
        return [task]

    def check_timeouts(self) -> int:
        """Fail every active run past its deadline (its steps' tasks are cancelled); returns how many."""
        return self.deadlines.check()

    def deliver(self, run: LiveRun, change: Change) -> None:
        """Apply `change` to `run` at its next drain (timers, child runs, budgets)."""
        run.inbox.append(change)
        self._kick(run)
