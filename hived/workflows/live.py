"""A workflow run as the engine holds it in memory: its steps' states, its inbox of changes, and the
conversions between them and the rows of run_steps. No I/O."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hived.model.schemas import TaskSubmit
from hived.model.states import FINAL_RUN, STEP_OF_TASK, RunStatus, StepStatus, TaskStatus
from hived.model.workflow import StepSpec, WorkflowSpec
from hived.store import workflows as store

S = StepStatus


@dataclass
class StepState:
    id: str
    status: StepStatus = S.PENDING
    task_id: str | None = None
    agent_id: str | None = None
    result: Any = None
    error: str | None = None
    decided_by: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {"step_id": self.id, **{name: getattr(self, name) for name in store.STEP_FIELDS}}

    def move(self, status: StepStatus) -> None:
        """The one way a step's status changes (checked against StepStatus's transitions)."""
        self.status = self.status.transition(status)  # type: ignore[assignment]

    def finish(self, status: StepStatus, now: datetime, error: str | None = None) -> None:
        self.move(status)
        self.finished_at = now
        if error is not None:
            self.error = error


@dataclass
class LiveRun:
    id: str
    workflow: str
    spec: WorkflowSpec
    params: dict[str, Any]
    status: RunStatus
    steps: dict[str, StepState]
    deadline: datetime | None = None
    inbox: list[Callable[[LiveRun, datetime], None]] = field(default_factory=list)
    draining: asyncio.Task[None] | None = None
    run_values: dict[str, Any] = field(default_factory=dict)  # run columns changed, to write
    cancel_tasks: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status in FINAL_RUN

    def move(self, status: RunStatus) -> None:
        """The one way a run's status changes (checked against RunStatus's transitions)."""
        self.status = self.status.transition(status)  # type: ignore[assignment]

    def variables(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "steps": {s.id: {"status": str(s.status), "result": s.result} for s in self.steps.values()},
        }


def may_fail(run: LiveRun, step: StepState) -> bool:
    return run.spec.step(step.id).continue_on_failure


def task_ended(
    step_id: str, task_id: str, status: str, row: dict[str, Any]
) -> Callable[[LiveRun, datetime], None]:
    def apply(run: LiveRun, now: datetime) -> None:
        step = run.steps.get(step_id)
        if step is None or step.status != S.RUNNING or step.task_id != task_id:
            return  # a late report for a step the run has already settled
        step.result = row.get("result")
        step.agent_id = row.get("agent_id") or step.agent_id
        step.finish(STEP_OF_TASK[TaskStatus(status)], now, row.get("error"))

    return apply


def step_task(spec: StepSpec, payload: dict[str, Any]) -> TaskSubmit:
    """The task that runs a step, with its rendered payload."""
    return TaskSubmit(
        type=spec.type,
        payload=payload,
        priority=spec.priority,
        requires=spec.requires,
        max_attempts=spec.retry.max_attempts,
        retry=spec.retry.model_dump(exclude={"max_attempts"}),
        timeout=spec.timeout,
        stall_timeout=spec.stall_timeout,
        success_when=spec.success_when,
    )


def step_from_row(row: dict[str, Any]) -> StepState:
    step = StepState(row["step_id"], **{name: row[name] for name in store.STEP_FIELDS})
    step.status = S(row["status"])
    return step
