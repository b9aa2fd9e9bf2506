"""A new run of a workflow, as rows to insert and the LiveRun the engine drives: a plain run, a
sub-workflow's run (linked to the run and step that started it), or a rerun (steps kept from the run
it reruns start succeeded, with their results)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hived.model.states import RunStatus
from hived.model.workflow import WorkflowSpec
from hived.workflows.live import LiveRun, StepState, step_from_row


@dataclass(frozen=True)
class Origin:
    """Where a run comes from, besides `workflow run`."""

    parent_run_id: str | None = None  # a sub-workflow's run: the run and step that started it
    parent_step: str | None = None
    rerun_of: str | None = None
    kept: dict[str, dict[str, Any]] = field(default_factory=dict)  # step id -> its row, kept as it was


def new_run(
    workflow: dict[str, Any], params: dict[str, Any], now: datetime, origin: Origin | None = None
) -> tuple[LiveRun, dict[str, Any], list[dict[str, Any]]]:
    """(the run, its row, its steps' rows) for a run of the stored `workflow`."""
    origin = origin or Origin()
    spec = WorkflowSpec.model_validate(workflow["definition"])
    run_id = str(uuid.uuid4())
    deadline = now + timedelta(seconds=spec.timeout) if spec.timeout else None
    row = {
        "id": run_id,
        "workflow_id": workflow["id"],
        "workflow": spec.name,
        "version": workflow["version"],
        "status": RunStatus.PENDING,
        "params": params,
        "cancel_requested": False,
        "error": None,
        "deadline": deadline,
        "revision": 0,
        "created_at": now,
        "started_at": None,
        "finished_at": None,
        "parent_run_id": origin.parent_run_id,
        "parent_step": origin.parent_step,
        "rerun_of": origin.rerun_of,
    }
    kept = origin.kept
    steps = {s.id: step_from_row(kept[s.id]) if s.id in kept else StepState(s.id) for s in spec.steps}
    step_rows = [{"run_id": run_id, "position": i, **steps[s.id].row()} for i, s in enumerate(spec.steps)]
    run = LiveRun(run_id, spec.name, spec, params, RunStatus.PENDING, steps)
    run.deadline = deadline
    return run, row, step_rows
