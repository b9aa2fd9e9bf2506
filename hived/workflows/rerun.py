"""`hivectl workflow rerun RUN [--from STEP]`: a new run of the same workflow version and params
(`rerun_of: RUN`) whose steps that keep their results start succeeded, with those results (and their
tasks and child runs, for reference); the others run again (hived.model.reruns decides which)."""

from __future__ import annotations

from typing import Any

from hived.errors import Conflict, NotFound
from hived.model.reruns import steps_to_rerun
from hived.model.states import RunStatus
from hived.store import workflows as store
from hived.store.db import Database
from hived.workflows.engine import WorkflowEngine
from hived.workflows.starting import Origin


async def rerun(db: Database, engine: WorkflowEngine, run_id: str, from_step: str | None) -> str:
    """Start the rerun of the (finished) run `run_id`; returns the new run's id."""

    def read(conn: Any) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        (row,) = store.run_by_id(conn, run_id)
        (workflow,) = store.workflow_by_id(conn, row["workflow_id"])
        return row, store.run_steps(conn, [run_id])[run_id], workflow

    row, steps, workflow = await db.read(read)
    if not RunStatus(row["status"]).final:
        raise Conflict(f"run {run_id} is {row['status']}: only a run that has ended can be rerun")
    definitions = {step["id"]: step for step in workflow["definition"]["steps"]}
    if from_step is not None and from_step not in definitions:
        known = ", ".join(definitions)
        raise NotFound(f"run {run_id} has no step {from_step!r} (its steps: {known})")
    needs = {step_id: step.get("needs", []) for step_id, step in definitions.items()}
    again = steps_to_rerun(needs, {s["step_id"]: s["status"] for s in steps}, from_step)
    if not again:
        raise Conflict(f"run {run_id}: every step succeeded; name the step to run again with --from STEP")
    kept = {s["step_id"]: s for s in steps if s["step_id"] not in again}
    return await engine.start_run(workflow, row["params"], Origin(rerun_of=run_id, kept=kept))
