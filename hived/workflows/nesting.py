"""Runs as clients see them, with the run of each `workflow:` step nested in its step (`child`), as far
as MAX_DEPTH levels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hived.model.runs import Run
from hived.model.subflows import MAX_DEPTH
from hived.store import workflow_links as links

Views = Callable[[Any, list[dict[str, Any]], int], list[Run]]


def nest_children(conn: Any, views: list[Run], make_views: Views, depth: int) -> None:
    """Fill `child` of every step of `views` that started a run (`make_views(conn, rows, depth)`
    builds the children's views, nesting theirs in turn)."""
    steps = [step for view in views for step in view.steps if step.child_run_id]
    if not steps or depth >= MAX_DEPTH:
        return
    rows = links.runs_by_ids(conn, [step.child_run_id for step in steps if step.child_run_id])
    children = {child.id: child for child in make_views(conn, list(rows.values()), depth + 1)}
    for step in steps:
        step.child = children.get(step.child_run_id or "")
