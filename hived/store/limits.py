"""Limit statements: definitions, bucket levels (compare-and-set on their version), closures, and
the throttled-attempt count of tasks. Each takes an open connection; callers batch them in one
commit (a bucket's level goes in the commit of the assignments that took from it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from hived.store.models import LimitRow, TaskRow
from hived.store.prepared import Prepared

limits = LimitRow.__table__
tasks = TaskRow.__table__


class StaleBucket(RuntimeError):
    """A bucket's version in the database is not the one this hived wrote last: someone else took
    from it. The assignment is not committed."""


SAVE_BUCKET = Prepared(  # (one per dispatch round that took tokens: run on the cursor)
    update(limits)
    .where(and_(limits.c.name == bindparam("b_name"), limits.c.version == bindparam("b_prev")))
    .values(tokens=bindparam("b_tokens"), tokens_at=bindparam("b_at"), version=bindparam("b_version"))
)
COUNT_THROTTLED = update(tasks).where(tasks.c.id == bindparam("b_id")).values(throttled=tasks.c.throttled + 1)


def load_limits(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(limits).order_by(limits.c.name)).mappings()]


def get_limit(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(limits).where(limits.c.name == name)).mappings().first()
    return dict(row) if row else None


def insert_limit(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(limits), [row])


def delete_limit(conn: Connection, name: str) -> int:
    return int(conn.execute(delete(limits).where(limits.c.name == name)).rowcount or 0)


def update_definition(conn: Connection, name: str, definition: dict[str, Any], now: datetime) -> None:
    conn.execute(update(limits).where(limits.c.name == name).values(definition=definition, updated_at=now))


def save_buckets(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """New bucket levels: rows of {name, tokens, at, version}; StaleBucket unless each limit is still
    at `version` - 1."""
    for row in rows:
        params = {
            "b_name": row["name"],
            "b_prev": row["version"] - 1,
            "b_tokens": row["tokens"],
            "b_at": row["at"],
            "b_version": row["version"],
        }
        if SAVE_BUCKET.run(conn, [params]) != 1:
            raise StaleBucket(f"limit {row['name']}: its bucket changed under this hived")


def close_limits(conn: Connection, closes: Sequence[tuple[str, float]]) -> None:
    """Throttled reports: each limit closed until the later of its closure and the new one."""
    for name, until in closes:
        conn.execute(
            update(limits)
            .where(limits.c.name == name)
            .values(closed_until=func.max(limits.c.closed_until, until))
            if conn.dialect.name == "sqlite"
            else update(limits)
            .where(limits.c.name == name)
            .values(closed_until=func.greatest(limits.c.closed_until, until))
        )


def count_throttled(conn: Connection, task_ids: Sequence[str]) -> None:
    if task_ids:
        conn.execute(COUNT_THROTTLED, [{"b_id": task_id} for task_id in task_ids])
