"""Rework loops on approval gates: `hivectl workflow reject RUN STEP --comment TEXT --rework STEP2` runs
STEP2 and every step after it again (the gate included), with the comment in
`${{ steps.<gate>.comment }}`, at most `max_rework` times per gate. The rule that says which steps
run again is pure (`rework_plan`, table-tested); `reworked` is that plan as a change of the run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from hived.errors import Conflict, Invalid
from hived.model.states import StepStatus
from hived.workflows.live import LiveRun, S
from hived.workflows.waits import Change


class ReworkRefused(ValueError):
    """A rework that cannot be done; `conflict` when it is the run's state (not the request) that refuses."""

    def __init__(self, message: str, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


def downstream(dependents: Mapping[str, Sequence[str]], start: str) -> list[str]:
    """`start` and every step that needs it, directly or not, in the order found."""
    seen, order, todo = {start}, [start], [start]
    while todo:
        for child in dependents.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                order.append(child)
                todo.append(child)
    return order


def rework_plan(
    dependents: Mapping[str, Sequence[str]], gate: str, target: str, rounds: int, max_rework: int
) -> list[str]:
    """The steps that run again when `gate` is rejected with `--rework target` after `rounds` earlier
    reworks: `target` and everything after it, which must include the gate."""
    if target not in dependents:
        raise ReworkRefused(f"rework: no step {target!r} in this workflow")
    if target == gate:
        raise ReworkRefused(f"rework: name a step before {gate!r}, not the approval itself")
    steps = downstream(dependents, target)
    if gate not in steps:
        raise ReworkRefused(f"rework: step {target!r} does not lead to approval {gate!r}")
    if rounds >= max_rework:
        raise ReworkRefused(
            f"approval {gate!r} was sent back {rounds} times already (max_rework: {max_rework}): "
            "approve or reject it without --rework",
            conflict=True,
        )
    return steps


def reworked(run: LiveRun, gate: str, target: str, by: str, comment: str | None) -> Change:
    """The change of `run` for a rejection of `gate` with `--rework target`; Invalid or Conflict now
    (nothing changed) when it cannot be done."""
    spec = run.graph.specs[gate]
    result = run.steps[gate].result if isinstance(run.steps[gate].result, dict) else {}
    rounds = int(result.get("rework") or 0)
    try:
        steps = rework_plan(run.graph.dependents, gate, target, rounds, spec.max_rework)
    except ReworkRefused as exc:
        raise (Conflict if exc.conflict else Invalid)(str(exc)) from None

    def apply(live: LiveRun, now: datetime) -> None:
        for step_id in steps:
            step = live.steps[step_id]
            if step.status == S.RUNNING and step.task_id:
                live.cancel_tasks.append(step.task_id)
            if step.status != S.PENDING:
                step.reset(StepStatus.PENDING)
        live.steps[gate].result = {"approved": False, "by": by, "comment": comment, "rework": rounds + 1}

    return apply
