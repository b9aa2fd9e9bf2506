"""Statements for the links between runs and the tasks and runs they make: a for_each step's item
tasks, a `workflow:` step's child run, and the workflows' references to each other. Each takes an
open connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from hived.store.models import RunRow, TaskRow
from hived.store.workflows import list_workflows

runs = RunRow.__table__
tasks = TaskRow.__table__


def item_tasks(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    """The tasks of a run's for_each items (those labelled with their step)."""
    rows = conn.execute(select(tasks).where(tasks.c.run_id == run_id)).mappings()
    return [dict(r) for r in rows if (r["labels"] or {}).get("hive/step")]


def child_run(conn: Connection, parent_run_id: str, parent_step: str) -> dict[str, Any] | None:
    """The run a `workflow:` step started, found by the link the child keeps to its parent."""
    row = conn.execute(
        select(runs).where(runs.c.parent_run_id == parent_run_id, runs.c.parent_step == parent_step)
    ).first()
    return dict(row._mapping) if row else None


def runs_by_ids(conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    return {r["id"]: dict(r) for r in conn.execute(select(runs).where(runs.c.id.in_(ids))).mappings()}


def workflow_references(conn: Connection) -> dict[str, dict[str, Any]]:
    """The newest definition of every workflow, by name."""
    return {row["name"]: row["definition"] for row in list_workflows(conn)}
