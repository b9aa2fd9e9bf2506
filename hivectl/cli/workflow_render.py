"""Tables of workflows and runs (pure: models in, rich renderables out, the clock passed in)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hivectl.cli.render import age, agent_name, details_table, grid, now_utc, status_text
from hived.model.runs import Run, RunStep, WorkflowInfo
from hived.model.workflow import step_type


def workflows_table(workflows: Sequence[WorkflowInfo], now: datetime | None = None) -> Table:
    table = grid(["NAME", "VERSION", "STEPS", "PARAMS", "AGE"])
    for wf in workflows:
        table.add_row(
            Text(wf.name),
            str(wf.version),
            str(len(wf.steps)),
            Text(params_text(wf.params) or "-"),
            age(wf.created_at, now),
        )
    return table


def workflow_view(wf: WorkflowInfo, now: datetime | None = None) -> RenderableType:
    table = grid(["STEP", "TYPE", "NEEDS", "WHEN"])
    for step in wf.steps:
        table.add_row(
            Text(step["id"]),
            Text(step_type(step)),
            Text(", ".join(step.get("needs", [])) or "-"),
            Text(step.get("when") or "-"),
        )
    return Group(details_table(wf, now, skip=("steps",)), Text(""), table)


def progress(run: Run) -> str:
    done = sum(s.status in ("succeeded", "failed", "skipped", "cancelled") for s in run.steps)
    return f"{done}/{len(run.steps)}"


def runs_table(runs: Sequence[Run], now: datetime | None = None) -> Table:
    table = grid(["ID", "WORKFLOW", "VERSION", "STATUS", "STEPS", "AGE", "DURATION"])
    for run in runs:
        table.add_row(
            run.id[:8],
            Text(run.workflow),
            str(run.version),
            status_text(run.status),
            progress(run),
            age(run.created_at, now),
            duration(run.started_at, run.finished_at, now),
        )
    return table


def duration(start: datetime | None, end: datetime | None, now: datetime | None = None) -> str:
    if start is None:
        return "-"
    seconds = ((end or now or now_utc()) - start).total_seconds()
    return f"{seconds:.1f}s" if seconds < 60 else age(start, end or now)


def steps_table(
    steps: Sequence[RunStep], names: Mapping[str, str], now: datetime | None = None, run_id: str = "RUN"
) -> Table:
    table = grid(["STEP", "TYPE", "STATUS", "AGENT", "DURATION", "TASK", "NOTE"])
    for depth, step in nested(steps):
        table.add_row(
            Text("  " * depth + ("└ " if depth else "") + step.id),
            Text(step.type),
            status_text(step.status),
            Text(agent_name(step.agent_id, names)),
            duration(step.started_at, step.finished_at, now),
            step.task_id[:8] if step.task_id else "-",
            Text(note(step, run_id)),
        )
    return table


def nested(steps: Sequence[RunStep], depth: int = 0) -> Iterator[tuple[int, RunStep]]:
    """The steps, each `workflow:` step followed by the steps of its child run, one level deeper."""
    for step in steps:
        yield depth, step
        if step.child is not None:
            yield from nested(step.child.steps, depth + 1)


def note(step: RunStep, run_id: str = "RUN") -> str:
    if step.items:
        items = step.items
        failed = f", {items['failed']} failed" if items["failed"] else ""
        return f"items {items['ended']}/{items['total']} ended, {items['running']} running{failed}"
    if step.child_run_id and not step.error:
        return f"run {step.child_run_id[:8]}" + (f" {step.child.status}" if step.child else "")
    until = f" (until {step.waiting_until:%H:%M:%S} UTC)" if step.waiting_until else ""
    if step.status == "waiting" and step.type == "sleep":
        return f"sleeping{until}"
    if step.status == "waiting" and step.signal:
        return f"waiting for: hivectl workflow signal {run_id} {step.signal}{until}"
    if step.status == "waiting":
        return f"waiting for: hivectl workflow approve|reject {run_id} {step.id}{until}"
    if step.decided_by:
        return f"decided by {step.decided_by}"
    return (step.error or "").splitlines()[0][:80] if step.error else ""


def run_view(run: Run, names: Mapping[str, str], now: datetime | None = None) -> RenderableType:
    head = details_table({}, now)
    head.add_row("run", Text(run.id))
    head.add_row("workflow", Text(f"{run.workflow} (version {run.version})"))
    head.add_row("status", status_text(run.status))
    head.add_row("params", Text(params_text(run.params) or "-"))
    head.add_row("duration", duration(run.started_at, run.finished_at, now))
    if run.parent_run_id:
        head.add_row("parent", Text(f"run {run.parent_run_id} step {run.parent_step}"))
    if run.rerun_of:
        head.add_row("rerun of", Text(run.rerun_of))
    if run.outputs is not None:
        head.add_row("outputs", Text(json.dumps(run.outputs)[:200]))
    if run.error:
        head.add_row("error", Text(run.error))
    if run.usage is not None and run.usage.reports or run.budget is not None:
        from hivectl.cli.spend import budget_text, usage_text

        head.add_row("usage", Text(usage_text(run.usage.model_dump() if run.usage else None)))
        head.add_row("budget", Text(budget_text(run.budget.model_dump() if run.budget else None)))
    return Group(head, Text(""), steps_table(run.steps, names, now, run.id[:8]))


def params_text(params: Mapping[str, object]) -> str:
    """`n=3, env="prod", dry=false`: values as JSON, as they are given with -p."""
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items())
