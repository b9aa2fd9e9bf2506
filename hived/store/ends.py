"""Ends of attempts on PostgreSQL in one statement: the fence (the task's lease is still the
attempt's, and the task is still in flight), the task's update and the attempt's, for a whole batch
of ends (arrays, `unnest`). The same rows change as with `current_leases` + `tasks.finish` (three
statements and their round trips, one of them a SELECT ... FOR UPDATE built per batch): the UPDATE
of a task locks its row and checks its lease and status again once any other writer of it has
committed, which is the fence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from hived.model.states import FINAL_TASK
from hived.store import jsontext

_FINISH = """
WITH r AS (
  SELECT * FROM unnest($1::varchar[], $2::bigint[], $3::varchar[], $4::text[], $5::varchar[],
                       $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::varchar[],
                       $10::varchar[], $11::text[])
    AS r(id, lease, status, result, error, next_at, completed_at, started_at, outcome, reason, output)
), t AS (
  UPDATE tasks SET status = r.status, result = r.result::jsonb, error = r.error,
    next_attempt_at = r.next_at, completed_at = r.completed_at,
    started_at = coalesce(tasks.started_at, r.started_at)
  FROM r
  WHERE tasks.id = r.id AND tasks.lease = r.lease
    AND tasks.status IN ('assigned', 'running', 'waiting_input')
  RETURNING tasks.id
), a AS (
  UPDATE task_attempts SET ended_at = $12, outcome = r.outcome, reason = r.reason, error = r.error,
    output = r.output
  FROM r{join}
  WHERE task_attempts.lease = r.lease AND task_attempts.ended_at IS NULL
)
SELECT id FROM t
"""
# nodes: an attempt ends only with its task's update (the attempt is still the task's current one)
FINISH_CURRENT = _FINISH.format(join=" JOIN t ON t.id = r.id")
# one hived: `hived.store.tasks.finish` (the attempt ends, by its lease, whether or not its task's
# update matched), one round trip where BEGIN, its two UPDATEs and COMMIT took four
FINISH = _FINISH.format(join="")


def finish_statement(rows: list[dict[str, Any]], now: datetime) -> tuple[str, tuple[Any, ...], Any]:
    """`hived.store.tasks.finish` of these ends as one statement (PostgreSQL), for
    `hived.store.prepared.OneStatement`: the SQL, its arguments, and the reader of its rows (None:
    every end counts as written, as with `finish`; one hived owns the database)."""
    return FINISH, finish_args(rows, now), _written_all


def _written_all(_records: Any) -> None:
    return None


def finish_current(conn: Connection, rows: list[dict[str, Any]], now: datetime) -> set[str]:
    """End these attempts where each is still its task's current one (rows as for
    `hived.store.tasks.finish`); returns the ids of the tasks whose end was written."""
    if not rows:
        return set()
    return finished_ids(conn.exec_driver_sql(FINISH_CURRENT, finish_args(rows, now)))


def finished_ids(records: Any) -> set[str]:
    """FINISH_CURRENT's rows: the ids of the tasks whose end was written."""
    return {record[0] for record in records}


def finish_args(rows: list[dict[str, Any]], now: datetime) -> tuple[Any, ...]:
    """FINISH_CURRENT's arguments ($1...$12) for these ends."""
    columns: list[list[Any]] = [[] for _ in range(11)]
    for r in rows:
        result = r.get("result")
        values = (
            str(r["task_id"]),
            r["lease"],
            str(r["status"]),
            None if result is None else jsontext.dumps(result),
            _text(r.get("error")),
            r.get("next_attempt_at"),
            now if r["status"] in FINAL_TASK else None,
            r.get("started_at"),
            str(r["outcome"]),
            _text(r.get("reason")),
            _text(r.get("output")),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return (*columns, now)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)  # an enum's value
