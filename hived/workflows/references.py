"""At apply: the sub-workflows a workflow's `workflow:` steps run must be stored, get params they
have (and every param they need), and never lead back to it (a cycle is refused, named)."""

from __future__ import annotations

from hived.errors import Invalid
from hived.model.graph import GraphError
from hived.model.subflows import reference_problems
from hived.model.workflow import WorkflowSpec, describe
from hived.store import workflow_links as links
from hived.store.db import Database


async def check_references(db: Database, spec: WorkflowSpec) -> None:
    """Invalid naming the step and the problem, if any."""
    if not any(step.workflow for step in spec.steps):
        return
    stored = await db.read(links.workflow_references)
    others = {name: definition for name, definition in stored.items() if name != spec.name}
    if problems := reference_problems(spec, others, strict=True):
        raise Invalid("; ".join(describe(GraphError(path, message)) for path, message in problems))
