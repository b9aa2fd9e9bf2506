"""`workflow:` steps at run time: the step starts a run of another workflow (its child) and waits for
it; the step's result is the child run's `outputs`. The link is kept both ways: the child's row names
its parent run and step (written with the child, so a restart finds a child whose parent had not yet
written its id), and the step keeps the child's id. Cancelling the parent (or its step) cancels the
child; the child's end settles the step."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any, Protocol

from hived.errors import Conflict, HiveError
from hived.events import EventBus, RunChanged, StepChanged
from hived.model.expressions import ExpressionError
from hived.model.states import RunStatus, StepStatus
from hived.model.workflow import ParamError, StepSpec, coerce_params
from hived.store import workflow_links as links
from hived.store import workflows as store
from hived.store.db import Database
from hived.workflows.live import Change, LiveRun
from hived.workflows.starting import Origin
from hived.workflows.templates import render

log = logging.getLogger("hived.workflows")
S = StepStatus


class Engine(Protocol):
    """What of the workflow engine (hived.workflows.engine) a run's children use."""

    db: Database
    events: EventBus
    runs: dict[str, LiveRun]

    async def start_run(
        self, workflow: dict[str, Any], params: dict[str, Any], origin: Origin | None = None
    ) -> str: ...

    async def cancel(self, run_id: str) -> None: ...

    def deliver(self, run: LiveRun, change: Change) -> None: ...

    def _background(self, coro: Any) -> None: ...


class Children:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.parent_of: dict[str, tuple[str, str]] = {}  # child run id -> (parent run id, step id)
        self.child_of: dict[tuple[str, str], str] = {}
        self.spawning: set[tuple[str, str]] = set()
        engine.events.subscribe(RunChanged, self.run_changed)
        engine.events.subscribe(StepChanged, self.step_changed)

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.engine.events.unsubscribe(RunChanged, self.run_changed)
            self.engine.events.unsubscribe(StepChanged, self.step_changed)

    def start(self, run: LiveRun, spec: StepSpec, variables: dict[str, Any], now: datetime) -> None:
        """The step starts: its params are rendered and its child run is started (after this pass)."""
        step = run.steps[spec.id]
        try:
            params = render(spec.params, variables)
        except ExpressionError as exc:
            step.finish(S.FAILED, now, f"params: {exc}")
            return
        step.move(S.RUNNING)
        self._spawn(run.id, spec, params)

    def _spawn(self, run_id: str, spec: StepSpec, params: dict[str, Any]) -> None:
        if (run_id, spec.id) not in self.spawning:
            self.spawning.add((run_id, spec.id))
            self.engine._background(self._start_child(run_id, spec, params))

    async def _start_child(self, run_id: str, spec: StepSpec, params: dict[str, Any]) -> None:
        assert spec.workflow is not None
        try:
            row = await self.engine.db.read(lambda c: store.latest_workflow(c, spec.workflow or ""))
            if row is None:
                raise HiveError(f"workflow {spec.workflow!r} not found (apply it first)")
            values = coerce_params(row["definition"].get("params", {}), params)
            origin = Origin(parent_run_id=run_id, parent_step=spec.id)
            child_id = await self.engine.start_run(row, values, origin)
        except (HiveError, ParamError) as exc:
            self._tell(run_id, failed(spec.id, f"cannot start workflow {spec.workflow!r}: {exc}"))
            return
        except Exception as exc:  # the database went away: the step fails rather than hangs
            log.exception("run %s: starting the sub-workflow of step %s failed", run_id, spec.id)
            self._tell(run_id, failed(spec.id, f"cannot start workflow {spec.workflow!r}: {exc}"))
            return
        finally:
            self.spawning.discard((run_id, spec.id))
        self._follow(child_id, run_id, spec.id)
        self._tell(run_id, started(spec.id, child_id, self))

    def _follow(self, child_id: str, run_id: str, step_id: str) -> None:
        self.parent_of[child_id] = (run_id, step_id)
        self.child_of[(run_id, step_id)] = child_id

    def _tell(self, run_id: str, change: Change) -> None:
        run = self.engine.runs.get(run_id)
        if run is not None and not run.done:
            self.engine.deliver(run, change)

    # --- the child's end, the parent's cancel ------------------------------------------------------

    def run_changed(self, event: RunChanged) -> None:
        if RunStatus(event.status).final and (found := self.parent_of.pop(event.run_id, None)):
            self.child_of.pop(found, None)
            self.engine._background(self._settle(event.run_id, *found))

    async def _settle(self, child_id: str, run_id: str, step_id: str) -> None:
        rows = await self.engine.db.read(lambda c: links.runs_by_ids(c, [child_id]))
        self._tell(run_id, ended(step_id, rows[child_id]))

    def step_changed(self, event: StepChanged) -> None:
        if event.status == S.CANCELLED and (child := self.child_of.get((event.run_id, event.step_id))):
            self.cancel(child)

    def cancel(self, child_id: str) -> None:
        async def cancel() -> None:
            with contextlib.suppress(Conflict):
                await self.engine.cancel(child_id)

        self.engine._background(cancel())

    # --- resuming ---------------------------------------------------------------------------------

    def resume(self, run: LiveRun) -> None:
        """A run read again: its running `workflow:` steps find their child runs (by the child's
        link when the step had not yet written its id), or start them."""
        for step in run.steps.values():
            spec = run.graph.specs[step.id]
            if step.status == S.RUNNING and spec.workflow is not None:
                self.engine._background(self._resume_step(run.id, spec, step.child_run_id))

    async def _resume_step(self, run_id: str, spec: StepSpec, child_id: str | None) -> None:
        def read(conn: Any) -> dict[str, Any] | None:
            if child_id is not None:
                return links.runs_by_ids(conn, [child_id]).get(child_id)
            return links.child_run(conn, run_id, spec.id)

        child = await self.engine.db.read(read)
        run = self.engine.runs.get(run_id)
        if run is None:
            return
        if child is None:
            try:
                self._spawn(run_id, spec, render(spec.params, run.variables()))
            except ExpressionError as exc:
                self._tell(run_id, failed(spec.id, f"params: {exc}"))
            return
        if child_id is None:
            self._tell(run_id, started(spec.id, child["id"], self))
        if RunStatus(child["status"]).final:
            self._tell(run_id, ended(spec.id, child))
        else:
            self._follow(child["id"], run_id, spec.id)


def started(step_id: str, child_id: str, children: Children) -> Change:
    def apply(run: LiveRun, now: datetime) -> None:
        step = run.steps[step_id]
        step.child_run_id = child_id
        if step.status == S.RUNNING:
            run.changed[step_id] = step  # written with this pass
        else:  # the step ended (its run was cancelled) while the child was being started
            children.cancel(child_id)

    return apply


def ended(step_id: str, child: dict[str, Any]) -> Change:
    """The child run ended: the step takes its outputs, and its status."""

    def apply(run: LiveRun, now: datetime) -> None:
        step = run.steps[step_id]
        if step.status != S.RUNNING:
            return
        step.child_run_id = child["id"]
        step.result = child.get("outputs")
        status = RunStatus(child["status"])
        if status == RunStatus.SUCCEEDED:
            step.finish(S.SUCCEEDED, now)
            return
        why = f"workflow {child['workflow']!r} run {child['id'][:8]} {status}"
        why += f": {child['error']}" if child.get("error") else ""
        step.finish(S.FAILED if status == RunStatus.FAILED else S.CANCELLED, now, why)

    return apply


def failed(step_id: str, why: str) -> Change:
    def apply(run: LiveRun, now: datetime) -> None:
        step = run.steps[step_id]
        if step.status == S.RUNNING:
            step.finish(S.FAILED, now, why)

    return apply
