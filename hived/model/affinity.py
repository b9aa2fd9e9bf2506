"""`affinity: STEP` on a workflow step: run on the agent that ran STEP, and continue on STEP's
workspace branch when that agent has a `workspace:`.

Every agent has the capability `hive/agent:<its id>`; the step's task requires the one of the agent
that ran STEP, and carries the label `hive/workspace-of: <STEP's task id>`, which hive-agent turns into
the branch its worktree checks out (`hive/<that task id>`). Validated with the graph: STEP must be a
step of the workflow, among the step's (transitive) needs, and neither may fan out (for_each)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hived.model.graph import GraphError, ancestors
from hived.model.workspaces import AFFINITY_CAPABILITY, WORKSPACE_LABEL


def affinity_errors(steps: Sequence[Mapping[str, Any]]) -> list[GraphError]:
    graph = {str(s["id"]): [str(n) for n in s.get("needs") or []] for s in steps}
    fanned = {str(s["id"]) for s in steps if s.get("for_each") is not None}
    errors = []
    for i, step in enumerate(steps):
        target = step.get("affinity")
        if target is None:
            continue
        where = ("steps", i, "affinity")
        step_id = str(step["id"])
        if target not in graph:
            errors.append(GraphError(where, f"step {step_id!r}: affinity names unknown step {target!r}"))
        elif target not in ancestors(graph, step_id):
            errors.append(
                GraphError(where, f"step {step_id!r}: affinity step {target!r} must be among its needs")
            )
        elif target in fanned or step_id in fanned:
            errors.append(GraphError(where, f"step {step_id!r}: affinity cannot name or be a for_each step"))
    return errors


def pinned(
    requires: list[str], labels: dict[str, str], agent_id: str | None, task_id: str | None
) -> dict[str, Any]:
    """The fields of a step's task that pin it to the agent (and workspace) of its affinity step."""
    if agent_id is None:
        return {}
    fields: dict[str, Any] = {"requires": [*requires, f"{AFFINITY_CAPABILITY}{agent_id}"]}
    if task_id is not None:
        fields["labels"] = {**labels, WORKSPACE_LABEL: task_id}
    return fields
