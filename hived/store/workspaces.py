"""Attempts' workspaces: one row per (task, attempt), written once (a result sent again is ignored)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from hived.store.models import AttemptWorkspaceRow

workspaces = AttemptWorkspaceRow.__table__


def insert_new(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose (task, attempt) is not stored yet; how many were new."""
    new = 0
    for row in rows:
        where = (workspaces.c.task_id == row["task_id"]) & (workspaces.c.attempt == row["attempt"])
        if conn.execute(select(workspaces.c.attempt).where(where)).first() is None:
            conn.execute(workspaces.insert(), [row])
            new += 1
    return new


def get(conn: Connection, task_id: str, attempt: int | None) -> dict[str, Any] | None:
    """The row of that attempt, or of the task's latest attempt with a workspace."""
    query = select(workspaces).where(workspaces.c.task_id == task_id)
    if attempt is not None:
        query = query.where(workspaces.c.attempt == attempt)
    row = conn.execute(query.order_by(workspaces.c.attempt.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def attempts_of(conn: Connection, task_id: str) -> list[int]:
    query = select(workspaces.c.attempt).where(workspaces.c.task_id == task_id)
    return [int(r[0]) for r in conn.execute(query.order_by(workspaces.c.attempt))]
