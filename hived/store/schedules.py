"""Schedule statements: definitions and their state (paused, next and last start). Each takes an
open connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from hived.store.models import RunRow, ScheduleRow, TaskRow

schedules = ScheduleRow.__table__
runs = RunRow.__table__
tasks = TaskRow.__table__

STATE = ("paused", "next_run_at", "last_run_at", "last_run_id", "queued", "updated_at")


def load_schedules(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(schedules).order_by(schedules.c.name)).mappings()]


def insert_schedule(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(schedules), [row])


def update_schedule(conn: Connection, name: str, values: dict[str, Any]) -> None:
    conn.execute(update(schedules).where(schedules.c.name == name).values(**values))


def delete_schedule(conn: Connection, name: str) -> None:
    conn.execute(delete(schedules).where(schedules.c.name == name))


def status_of(conn: Connection, ids: list[str], of_tasks: bool) -> dict[str, str]:
    """The status of each run (or task) of `ids` that exists."""
    if not ids:
        return {}
    table = tasks if of_tasks else runs
    rows = conn.execute(select(table.c.id, table.c.status).where(table.c.id.in_(ids)))
    return {r.id: r.status for r in rows}


def claim_start(conn: Connection, name: str, due: datetime, following: datetime | None) -> bool:
    """Several nodes: the one whose update moves the schedule's next start on from `due` makes it."""
    res = conn.execute(
        update(schedules)
        .where(schedules.c.name == name, schedules.c.next_run_at == due)
        .values(next_run_at=following)
    )
    return bool(res.rowcount)
