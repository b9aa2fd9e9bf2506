"""A workflow run as the engine holds it in memory: its steps' states, its inbox of changes, and the
conversions between them and the rows of run_steps. No I/O.

Work per change is proportional to what changed, not to the size of the run: every step reports its
moves to its run (`LiveRun.changed`, the rows of the next write), a step that becomes final makes the
steps that need it candidates to start (`LiveRun.candidates`), and the run counts its unfinished
steps. The graph's lookups (steps by id, who needs whom) are built once per run (`RunGraph`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hived.model.affinity import pinned
from hived.model.graph import Node, expressions_in
from hived.model.schemas import TaskSubmit
from hived.model.states import FINAL_RUN, FINAL_STEP, STEP_OF_TASK, RunStatus, StepStatus, TaskStatus
from hived.model.waits import APPROVAL
from hived.model.workflow import StepSpec, WorkflowSpec
from hived.store import workflows as store

# A change to a run, applied by its drain (an ended task, a decision, a timer, a cancel).
Change = Callable[["LiveRun", datetime], None]

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
    child_run_id: str | None = None  # a `workflow:` step: the run it started
    started_at: datetime | None = None
    finished_at: datetime | None = None
    moved: Callable[[StepState], None] | None = field(default=None, repr=False, compare=False)

    def row(self) -> dict[str, Any]:
        return {"step_id": self.id, **{name: getattr(self, name) for name in store.STEP_FIELDS}}

    def move(self, status: StepStatus) -> None:
        """The one way a step's status changes (checked against StepStatus's transitions)."""
        self.status = self.status.transition(status)  # type: ignore[assignment]
        if self.moved is not None:
            self.moved(self)

    def finish(self, status: StepStatus, now: datetime, error: str | None = None) -> None:
        self.move(status)
        self.finished_at = now
        if error is not None:
            self.error = error

    def reset(self, status: StepStatus) -> None:
        """Back to `pending`, as if it had never run (a rework runs it again)."""
        self.task_id = self.agent_id = self.result = self.error = self.decided_by = None
        self.started_at = self.finished_at = None
        self.move(status)


@dataclass
class RunGraph:
    """A workflow's graph as the engine walks it: built once per run."""

    specs: dict[str, StepSpec]
    nodes: dict[str, Node]
    position: dict[str, int]
    dependents: dict[str, list[str]]  # step id -> the steps that need it
    templated: frozenset[str]  # steps with a `when` or a ${{ }} in their payload
    approvals: tuple[str, ...] = ()

    @classmethod
    def of(cls, spec: WorkflowSpec) -> RunGraph:
        dependents: dict[str, list[str]] = {step.id: [] for step in spec.steps}
        for step in spec.steps:
            for need in step.needs:
                dependents[need].append(step.id)
        return cls(
            specs={step.id: step for step in spec.steps},
            nodes={step.id: step.node for step in spec.steps},
            position={step.id: i for i, step in enumerate(spec.steps)},
            dependents=dependents,
            templated=frozenset(
                s.id for s in spec.steps if s.when is not None or any(True for _ in expressions_in(s.payload))
            ),
            approvals=tuple(s.id for s in spec.steps if s.type == APPROVAL),
        )


class Statuses(Mapping[str, StepStatus]):
    """The steps' statuses as a mapping, read through (no copy)."""

    def __init__(self, steps: dict[str, StepState]) -> None:
        self._steps = steps

    def __getitem__(self, step_id: str) -> StepStatus:
        return self._steps[step_id].status

    def __iter__(self) -> Iterator[str]:
        return iter(self._steps)

    def __len__(self) -> int:
        return len(self._steps)


@dataclass
class LiveRun:
    id: str
    workflow: str
    spec: WorkflowSpec
    params: dict[str, Any]
    status: RunStatus
    steps: dict[str, StepState]
    deadline: datetime | None = None
    inbox: list[Change] = field(default_factory=list)
    draining: asyncio.Task[None] | None = None
    run_values: dict[str, Any] = field(default_factory=dict)  # run columns changed, to write
    cancel_tasks: list[str] = field(default_factory=list)
    revision: int = 0  # grows with every change of the run, its steps, or their tasks' assignment
    changed: dict[str, StepState] = field(default_factory=dict)  # steps moved since the last write
    candidates: set[str] = field(default_factory=set)  # steps that may start or be skipped now
    checked: bool = False  # the whole run was looked at once (after that, only what changed)
    fanouts: dict[str, Any] = field(default_factory=dict)  # step id -> its FanOut while it runs

    def __post_init__(self) -> None:
        self.graph = RunGraph.of(self.spec)
        self.statuses = Statuses(self.steps)
        self.unfinished = {sid for sid, s in self.steps.items() if s.status not in FINAL_STEP}
        self.candidates = set(self.steps)
        for step in self.steps.values():
            step.moved = self._moved

    @classmethod
    def from_rows(
        cls, row: dict[str, Any], steps: list[dict[str, Any]], definition: dict[str, Any]
    ) -> LiveRun:
        """A run as stored: its row, its steps' rows and its workflow's definition."""
        return cls(
            id=row["id"],
            workflow=row["workflow"],
            spec=WorkflowSpec.model_validate(definition),
            params=row["params"],
            status=RunStatus(row["status"]),
            steps={s["step_id"]: step_from_row(s) for s in steps},
            deadline=row["deadline"],
            revision=row["revision"],
        )

    def _moved(self, step: StepState) -> None:
        self.changed[step.id] = step
        if step.status == S.PENDING:  # sent back by a rework
            self.unfinished.add(step.id)
            self.candidates.add(step.id)
        elif step.status in FINAL_STEP:
            self.unfinished.discard(step.id)
            self.candidates.update(self.graph.dependents[step.id])

    def take_changed(self) -> list[StepState]:
        """The steps moved since the last call, in the workflow's order."""
        changed, self.changed = self.changed, {}
        return sorted(changed.values(), key=lambda s: self.graph.position[s.id])

    @property
    def done(self) -> bool:
        return self.status in FINAL_RUN

    def move(self, status: RunStatus) -> None:
        """The one way a run's status changes (checked against RunStatus's transitions)."""
        self.status = self.status.transition(status)  # type: ignore[assignment]

    def end(self, status: RunStatus, error: str | None, now: datetime) -> None:
        """The run ends: its unfinished steps are cancelled (their running tasks too, after the write)."""
        self.cancel_tasks += [task_id for fan in self.fanouts.values() for task_id in fan.running]
        for step in self.steps.values():
            if step.status in FINAL_STEP:
                continue
            if step.status == S.RUNNING and step.task_id:
                self.cancel_tasks.append(step.task_id)
            step.finish(S.CANCELLED, now, f"run {status}")
        self.move(status)
        self.run_values.update(status=status, error=error, finished_at=now)
        if status == RunStatus.CANCELLED:
            self.run_values["cancel_requested"] = True

    def variables(self) -> dict[str, Any]:
        steps = {s.id: {"status": str(s.status), "result": s.result} for s in self.steps.values()}
        for step_id in self.graph.approvals:  # `steps.<gate>.comment`: the last rejection's, for a rework
            result = self.steps[step_id].result
            steps[step_id]["comment"] = result.get("comment") if isinstance(result, dict) else None
        return {"params": self.params, "steps": steps}


def may_fail(run: LiveRun, step: StepState) -> bool:
    return run.graph.specs[step.id].continue_on_failure


def task_ended(
    step_id: str, task_id: str, status: str, row: dict[str, Any]
) -> Change:
    def apply(run: LiveRun, now: datetime) -> None:
        if (fan := run.fanouts.get(step_id)) is not None:  # one item of a for_each step
            fan.ended(run, task_id, status, row, now)
            return
        step = run.steps.get(step_id)
        if step is None or step.status != S.RUNNING or step.task_id != task_id:
            return  # a late report for a step the run has already settled
        step.result = row.get("result")
        step.agent_id = row.get("agent_id") or step.agent_id
        step.finish(STEP_OF_TASK[TaskStatus(status)], now, row.get("error"))

    return apply


def decision(
    step_id: str, approve: bool, by: str, comment: str | None
) -> Change:
    """An operator's answer to an approval gate, as a change of the run."""

    def apply(run: LiveRun, now: datetime) -> None:
        step = run.steps[step_id]
        rounds = step.result.get("rework") if isinstance(step.result, dict) else None
        step.result = {"approved": approve, "by": by, "comment": comment}
        if rounds:  # sent back before: the count goes on
            step.result["rework"] = rounds
        if approve:
            step.finish(S.SUCCEEDED, now)
        else:
            step.finish(S.FAILED, now, f"rejected by {by}" + (f": {comment}" if comment else ""))

    return apply


def step_task(spec: StepSpec, payload: dict[str, Any], run: LiveRun | None = None) -> TaskSubmit:
    """The task that runs a step, with its rendered payload (pinned by its `affinity`, if any)."""
    pin = run.steps.get(spec.affinity) if run is not None and spec.affinity else None
    task = TaskSubmit(
        type=spec.type,
        payload=payload,
        priority=spec.priority,
        requires=spec.requires,
        max_attempts=spec.retry.max_attempts,
        retry=spec.retry.model_dump(exclude={"max_attempts"}),
        timeout=spec.timeout,
        stall_timeout=spec.stall_timeout,
        success_when=spec.success_when,
        limits=spec.limits,
        budget=spec.budget,
        estimate=spec.estimate,
    )
    if pin is None:
        return task
    return task.model_copy(update=pinned(task.requires, task.labels, pin.agent_id, pin.task_id))


def step_from_row(row: dict[str, Any]) -> StepState:
    step = StepState(row["step_id"], **{name: row[name] for name in store.STEP_FIELDS})
    step.status = S(row["status"])
    return step
