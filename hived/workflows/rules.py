"""The pure rules of a running workflow: which steps start now, which are skipped, and when a run
is over. Table-tested in tests/unit/test_dag.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hived.model.graph import Node
from hived.model.states import FINAL_STEP, RunStatus, StepStatus


def next_moves(
    nodes: Sequence[Node], status: Mapping[str, StepStatus], by_id: Mapping[str, Node] | None = None
) -> tuple[list[str], list[str]]:
    """(steps to start now, steps to skip now) among `nodes`: a step starts when every need is final
    and none was skipped or failed (unless that need may fail); otherwise it is skipped. `by_id` is
    the whole graph when `nodes` is only a part of it (the candidates)."""
    start, skip = [], []
    by_id = by_id if by_id is not None else {n.id: n for n in nodes}
    for node in nodes:
        if status.get(node.id, StepStatus.PENDING) != StepStatus.PENDING:
            continue
        need_states = [status.get(n, StepStatus.PENDING) for n in node.needs]
        if not all(s in FINAL_STEP for s in need_states):
            continue
        blocked = any(
            s in (StepStatus.SKIPPED, StepStatus.CANCELLED)
            or (s == StepStatus.FAILED and not by_id[n].continue_on_failure)
            for n, s in zip(node.needs, need_states, strict=True)
        )
        (skip if blocked else start).append(node.id)
    return start, skip


def run_outcome(
    nodes: Sequence[Node], status: Mapping[str, StepStatus], unfinished: int | None = None
) -> RunStatus | None:
    """`failed` as soon as a step of `nodes` failed (or its task was cancelled) that may not;
    `succeeded` when all steps are final; else None. `unfinished` is how many steps of the whole run
    are not final, when `nodes` is only a part of it (the steps that just changed)."""
    for node in nodes:
        failed = status.get(node.id) in (StepStatus.FAILED, StepStatus.CANCELLED)
        if failed and not node.continue_on_failure:
            return RunStatus.FAILED
    if unfinished is None:
        unfinished = sum(status.get(n.id) not in FINAL_STEP for n in nodes)
    return RunStatus.SUCCEEDED if unfinished == 0 else None
