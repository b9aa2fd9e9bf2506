"""`for_each` steps at run time: one task per item of a list made when the step starts, at most
`max_parallel` of them at once; the step's result is the list of the items' results, in order.

Nothing is stored besides the tasks: each item's task carries the labels `hive/step` and `hive/item`
(its index) and the run's id, and the list is the step's `for_each` evaluated again over the same
stored results (an expression gives the same list over the same values). So a run resumed after a
restart finds its items in the tasks table (`resume`), and an item costs one task row, written in the
same commit as the step changes of its run.

Failure: without `continue_on_failure`, the first item that fails fails the step at once and its
running items are cancelled; with it, every item runs and the step fails at the end if one did."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hived.errors import HiveError
from hived.model.expressions import ExpressionError
from hived.model.fanout import item_variables, items_of
from hived.model.schemas import TaskSubmit
from hived.model.states import FINAL_TASK, StepStatus, TaskStatus
from hived.model.workflow import StepSpec
from hived.workflows.live import LiveRun, step_task, task_ended
from hived.workflows.templates import render

S = StepStatus
ITEM_STEP = "hive/step"  # labels of an item's task: the step, and the item's index
ITEM_INDEX = "hive/item"

NewTaskRow = Callable[[TaskSubmit, str], dict[str, Any]]


@dataclass
class FanOut:
    """One running for_each step: its items, what runs, what has ended."""

    spec: StepSpec
    items: list[Any]
    variables: dict[str, Any]  # the run's values the items' payloads may use (fixed: needs are done)
    results: list[Any]
    next: int = 0  # the next item to start
    running: dict[str, int] = field(default_factory=dict)  # task id -> item index
    failed: list[tuple[int, str]] = field(default_factory=list)  # (index, why), in the order they ended
    ended_count: int = 0

    @property
    def limit(self) -> int:
        return self.spec.max_parallel or len(self.items)

    def ended(self, run: LiveRun, task_id: str, status: str, row: dict[str, Any], now: datetime) -> None:
        """An item's task reached a final state."""
        index = self.running.pop(task_id, None)
        if index is None:
            return  # a late report (the step has been settled)
        self.results[index] = row.get("result")
        self.ended_count += 1
        if status != TaskStatus.COMPLETED:
            self.failed.append((index, f"item {index} {status}: {row.get('error') or ''}".strip()))
            if not self.spec.continue_on_failure:
                self.settle(run, now)
                return
        if self.ended_count == len(self.items):
            self.settle(run, now)

    def settle(self, run: LiveRun, now: datetime) -> None:
        """The step ends: succeeded when every item did, else failed naming the first that failed;
        items still running are cancelled."""
        run.fanouts.pop(self.spec.id, None)
        run.cancel_tasks += list(self.running)
        self.running.clear()
        step = run.steps[self.spec.id]
        if step.status != S.RUNNING:
            return
        step.result = self.results
        if not self.failed:
            step.finish(S.SUCCEEDED, now)
            return
        first = self.failed[0][1]
        if self.ended_count == len(self.items):
            first = f"{len(self.failed)} of {len(self.items)} items failed; first: {first}"
        step.finish(S.FAILED, now, first)

    def fill(self, run: LiveRun, new_task_row: NewTaskRow, now: datetime) -> list[dict[str, Any]]:
        """Tasks for the next items, up to `max_parallel` running."""
        tasks = []
        while self.next < len(self.items) and len(self.running) < self.limit and self.spec.id in run.fanouts:
            index, self.next = self.next, self.next + 1
            try:
                variables = {**self.variables, **item_variables(self.items[index], index)}
                payload = render(self.spec.payload, variables)
                if not isinstance(payload, dict):
                    raise ExpressionError("payload must render to a mapping")
                labels = {ITEM_STEP: self.spec.id, ITEM_INDEX: str(index)}
                sub = step_task(self.spec, payload).model_copy(update={"labels": labels})
                task = new_task_row(sub, run.id)
            except (ExpressionError, HiveError) as exc:
                self.running[f"unstarted-{index}"] = index
                self.ended(run, f"unstarted-{index}", TaskStatus.FAILED, {"error": str(exc)}, now)
                continue
            self.running[task["id"]] = index
            tasks.append(task)
        return tasks


def progress(run: LiveRun | None, step_id: str) -> dict[str, int] | None:
    """A running for_each step's items as a run's view shows them: total, ended, running, failed."""
    fan = run.fanouts.get(step_id) if run is not None else None
    if fan is None:
        return None
    ended, running, failed = fan.ended_count, len(fan.running), len(fan.failed)
    return {"total": len(fan.items), "ended": ended, "running": running, "failed": failed}


def used_variables(spec: StepSpec, variables: dict[str, Any]) -> dict[str, Any]:
    """The run's values an item's payload refers to: each item's templates are evaluated over these,
    so a run with large results does not pay for converting them once per item."""
    text = json.dumps(spec.payload)
    return {name: value for name, value in variables.items() if name in text}


class FanOuts:
    """Starts for_each steps and feeds their items to the engine, as tasks to create."""

    def __init__(self, new_task_row: NewTaskRow) -> None:
        self.new_task_row = new_task_row

    def start(
        self, run: LiveRun, spec: StepSpec, variables: dict[str, Any], now: datetime
    ) -> list[dict[str, Any]]:
        """The step starts: its list is made; tasks for its first items. A `for_each` that does not
        give a list fails the step, saying what it gave."""
        step = run.steps[spec.id]
        try:
            items = items_of(render(spec.for_each, variables))
        except (ExpressionError, ValueError) as exc:
            step.finish(S.FAILED, now, f"for_each: {exc}")
            return []
        step.move(S.RUNNING)
        fan = FanOut(spec, items, used_variables(spec, variables), [None] * len(items))
        run.fanouts[spec.id] = fan
        if not items:
            fan.settle(run, now)
            return []
        return fan.fill(run, self.new_task_row, now)

    def fill(self, run: LiveRun, now: datetime) -> list[tuple[str, dict[str, Any]]]:
        """Tasks for the items whose turn has come (items that ended made room), as (step, task)."""
        fans = list(run.fanouts.items())
        return [(sid, task) for sid, fan in fans for task in fan.fill(run, self.new_task_row, now)]

    def resume(self, run: LiveRun, tasks: list[dict[str, Any]], follow: Callable[[str, str], None]) -> None:
        """A run read again (hived restarted): each running for_each step gets its list again and
        the tasks its items have (`tasks`: the run's item tasks). Items that ended meanwhile are
        applied through the inbox; `follow(step id, task id)` follows those still running."""
        by_step: dict[str, list[dict[str, Any]]] = {}
        for task in tasks:
            by_step.setdefault((task.get("labels") or {}).get(ITEM_STEP, ""), []).append(task)
        variables = run.variables()
        for step in run.steps.values():
            spec = run.graph.specs[step.id]
            if step.status != S.RUNNING or spec.for_each is None:
                continue
            items = items_of(render(spec.for_each, variables))  # it gave a list when the step started
            fan = FanOut(spec, items, used_variables(spec, variables), [None] * len(items))
            run.fanouts[step.id] = fan
            for task in by_step.get(step.id, []):
                index = int(task["labels"][ITEM_INDEX])
                fan.running[task["id"]] = index
                fan.next = max(fan.next, index + 1)
                if task["status"] in FINAL_TASK:
                    run.inbox.append(task_ended(step.id, task["id"], task["status"], task))
                else:
                    follow(step.id, task["id"])
