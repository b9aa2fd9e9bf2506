"""Task and attempt statements. Each takes an open connection; callers batch them in one commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from hived.store import jsontext
from hived.store.models import AttemptRow, TaskRow
from hived.store.prepared import Prepared, Statements

tasks = TaskRow.__table__
attempts = AttemptRow.__table__


# The statements of the hot path are built once (building one costs more than running it on SQLite)
# and run on the DBAPI cursor (hived/store/prepared.py).
INSERT_TASK = Prepared(insert(tasks))
ASSIGN_TASK = Prepared(
    update(tasks)
    .where(tasks.c.id == bindparam("b_id"))
    .values(
        status="assigned",
        agent_id=bindparam("b_agent"),
        lease=bindparam("b_lease"),
        attempts=bindparam("b_number"),
        next_attempt_at=None,
    )
)
INSERT_ATTEMPT = Prepared(insert(attempts))
MARK_RUNNING = Prepared(
    update(tasks)
    .where(
        and_(
            tasks.c.id == bindparam("b_id"),
            tasks.c.lease == bindparam("b_lease"),
            tasks.c.status == "assigned",
        )
    )
    .values(status="running", started_at=bindparam("b_started"))
)
FINISH_TASK = Prepared(
    update(tasks)
    .where(
        and_(
            tasks.c.id == bindparam("b_id"),
            tasks.c.lease == bindparam("b_lease"),
            or_(  # no IN with executemany
                tasks.c.status == "assigned", tasks.c.status == "running", tasks.c.status == "waiting_input"
            ),
        )
    )
    .values(
        status=bindparam("b_status"),
        result=bindparam("b_result"),
        error=bindparam("b_error"),
        next_attempt_at=bindparam("b_next"),
        completed_at=bindparam("b_completed"),
        started_at=func.coalesce(tasks.c.started_at, bindparam("b_started")),  # if never marked
    )
)
FINISH_ATTEMPT = Prepared(
    update(attempts)
    .where(and_(attempts.c.lease == bindparam("b_lease"), attempts.c.ended_at.is_(None)))  # ends once
    .values(
        ended_at=bindparam("b_ended"),
        outcome=bindparam("b_outcome"),
        reason=bindparam("b_reason"),
        error=bindparam("b_error"),
        output=bindparam("b_output"),
    )
)


def insert_task(conn: Connection, row: dict[str, Any]) -> None:
    INSERT_TASK.run(conn, [row])


def submission(row: dict[str, Any], assigned: list[dict[str, Any]], now: datetime) -> Statements:
    """A submit's write: `insert_task`, then `insert_attempts` of its assignment if it has one (one
    statement on PostgreSQL)."""
    return Statements((INSERT_TASK, row), *((INSERT_ATTEMPT, _attempt_row(r, now)) for r in assigned))


def insert_tasks(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        INSERT_TASK.run(conn, rows)


def max_seq_and_lease(conn: Connection) -> tuple[int, int]:
    seq = (conn.execute(select(func.max(tasks.c.seq)))).scalar() or 0
    lease = (conn.execute(select(func.max(attempts.c.lease)))).scalar() or 0
    return int(seq), int(lease)


def assign(conn: Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    """Record new attempts: rows of {task_id, agent_id, lease, number}."""
    if not rows:
        return
    ASSIGN_TASK.run(
        conn,
        [
            {"b_id": r["task_id"], "b_agent": r["agent_id"], "b_lease": r["lease"], "b_number": r["number"]}
            for r in rows
        ],
    )
    insert_attempts(conn, rows, now)


def insert_attempts(conn: Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    """The attempt rows of new assignments (`assign` without the task's update: a task inserted as
    assigned already)."""
    INSERT_ATTEMPT.run(conn, [_attempt_row(r, now) for r in rows])


def _attempt_row(r: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "lease": r["lease"],
        "task_id": r["task_id"],
        "number": r["number"],
        "agent_id": r["agent_id"],
        "started_at": now,
    }


def mark_running(conn: Connection, leases: Sequence[tuple[str, int, datetime | None]]) -> None:
    """Delivered attempts: (task id, lease, when delivered)."""
    if not leases:
        return
    MARK_RUNNING.run(
        conn,
        [{"b_id": task_id, "b_lease": lease, "b_started": at} for task_id, lease, at in leases],
    )


def finish(conn: Connection, rows: list[dict[str, Any]], now: datetime) -> int:
    """End attempts. Each row: task_id, lease, status (completed|failed|retrying|pending|cancelled),
    result, error, outcome, reason, next_attempt_at, output. Fenced by lease: returns rows updated."""
    if not rows:
        return 0
    matched = FINISH_TASK.run(
        conn,
        [
            {
                "b_id": r["task_id"],
                "b_lease": r["lease"],
                "b_status": r["status"],
                "b_result": r.get("result"),
                "b_error": r.get("error"),
                "b_next": r.get("next_attempt_at"),
                "b_completed": now if r["status"] in ("completed", "failed", "cancelled") else None,
                "b_started": r.get("started_at"),
            }
            for r in rows
        ],
    )
    FINISH_ATTEMPT.run(
        conn,
        [
            {
                "b_lease": r["lease"],
                "b_ended": now,
                "b_outcome": r["outcome"],
                "b_reason": r.get("reason"),
                "b_error": r.get("error"),
                "b_output": r.get("output"),
            }
            for r in rows
        ],
    )
    return matched


QUEUED = ("pending", "retrying", "scheduled")


def end_queued(conn: Connection, task_id: str, now: datetime, status: str, error: str) -> int:
    """End a task that waits for an agent: `cancelled`, or `failed` (it expired: only a task that
    never started an attempt)."""
    where = and_(tasks.c.id == task_id, tasks.c.status.in_(QUEUED))
    if status == "failed":
        where = and_(where, tasks.c.attempts == 0)
    res = conn.execute(
        update(tasks).where(where).values(status=status, completed_at=now, next_attempt_at=None, error=error)
    )
    return int(res.rowcount or 0)


def start_scheduled(conn: Connection, task_ids: Sequence[str]) -> None:
    """Scheduled tasks that are due become pending."""
    if task_ids:
        conn.execute(
            update(tasks)
            .where(and_(tasks.c.id.in_(list(task_ids)), tasks.c.status == "scheduled"))
            .values(status="pending")
        )


def load_timed(conn: Connection) -> list[dict[str, Any]]:
    """Scheduled tasks, and unstarted ones that expire (for recovery at start)."""
    rows = conn.execute(
        select(tasks).where(
            or_(
                tasks.c.status == "scheduled",
                and_(tasks.c.status == "pending", tasks.c.attempts == 0, tasks.c.expires_at.is_not(None)),
            )
        )
    )
    return [dict(r) for r in rows.mappings()]


def resubmit(conn: Connection, task_id: str, seq: int) -> int:
    res = conn.execute(
        update(tasks)
        .where(and_(tasks.c.id == task_id, tasks.c.status.in_(("failed", "cancelled"))))
        .values(
            status="pending",
            attempts=0,
            error=None,
            result=None,
            completed_at=None,
            seq=seq,
            next_attempt_at=None,
            agent_id=None,
            not_before=None,
            expires_at=None,
        )
    )
    return int(res.rowcount or 0)


GET_TASK = select(tasks).where(tasks.c.id == bindparam("b_id"))
GET_ATTEMPTS = select(attempts).where(attempts.c.task_id == bindparam("b_task")).order_by(attempts.c.number)


def get_task(conn: Connection, task_id: str) -> dict[str, Any] | None:
    row = (conn.execute(GET_TASK, {"b_id": task_id})).mappings().first()
    return dict(row) if row else None


class AmbiguousPrefix(LookupError):
    """More than one task id starts with the prefix given."""


def resolve_task(conn: Connection, ref: str) -> dict[str, Any] | None:
    """A task by full id or by a unique id prefix (4 characters or more); None if there is none."""
    row = get_task(conn, ref)
    if row is not None:
        return row
    if len(ref) >= 4 and all(ch in "0123456789abcdef-" for ch in ref):
        rows = conn.execute(select(tasks).where(tasks.c.id.like(f"{ref}%")).limit(2)).mappings().all()
        if len(rows) > 1:
            raise AmbiguousPrefix(ref)
        if rows:
            return dict(rows[0])
    return None


def _filtered(
    status: str | None, type: str | None, labels: dict[str, str] | None, agent_id: str | None = None
) -> Select[Any]:
    query = select(tasks)
    for column, value in ((tasks.c.status, status), (tasks.c.type, type), (tasks.c.agent_id, agent_id)):
        if value:
            query = query.where(column == value)
    for key, value in (labels or {}).items():  # JSON_EXTRACT on SQLite, ->> on PostgreSQL
        query = query.where(tasks.c.labels[key].as_string() == value)
    return query


def list_tasks(
    conn: Connection,
    *,
    status: str | None,
    type: str | None,
    agent_id: str | None,
    run_id: str | None,
    limit: int,
    offset: int,
    max_bytes: int | None = None,
    labels: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of tasks, newest first, and how many match in all. With `max_bytes`, the page ends
    early once its payloads and results hold that much JSON (at least one task is given): rows are
    read a few at a time, so a page of large tasks never sits in memory whole."""
    query = _filtered(status, type, labels, agent_id)
    if run_id:
        query = query.where(tasks.c.run_id == run_id)
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar() or 0
    streamed = conn.execution_options(stream_results=True, yield_per=20)
    page: list[dict[str, Any]] = []
    size = 0
    for row in streamed.execute(query.order_by(tasks.c.seq.desc()).limit(limit).offset(offset)).mappings():
        if max_bytes is not None:
            size += _json_bytes(row["payload"]) + _json_bytes(row["result"])
            if page and size > max_bytes:
                break
        page.append(dict(row))
    return page, int(total)


def matching_ids(
    conn: Connection, status: str, type: str | None, labels: dict[str, str], limit: int
) -> tuple[list[str], int]:
    """The ids of at most `limit` tasks in `status` (of `type`, with `labels`), oldest first, and
    how many match in all (a bulk cancel or retry)."""
    query = _filtered(status, type, labels)
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar() or 0
    ids = conn.execute(query.with_only_columns(tasks.c.id).order_by(tasks.c.seq).limit(limit)).scalars()
    return list(ids), int(total)


def _json_bytes(value: Any) -> int:
    return 0 if value is None else jsontext.size(value)


def agent_ids_of(conn: Connection, task_ids: Sequence[str]) -> dict[str, str | None]:
    """{task id: the agent id of its current attempt} for these tasks."""
    if not task_ids:
        return {}
    rows = conn.execute(select(tasks.c.id, tasks.c.agent_id).where(tasks.c.id.in_(list(task_ids))))
    return {task_id: agent_id for task_id, agent_id in rows.all()}


def get_attempts(conn: Connection, task_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(GET_ATTEMPTS, {"b_task": task_id})
    return [dict(r) for r in rows.mappings()]


def find_by_idempotency_key(conn: Connection, key: str) -> dict[str, Any] | None:
    row = (conn.execute(select(tasks).where(tasks.c.idempotency_key == key))).mappings().first()
    return dict(row) if row else None


def find_by_idempotency_keys(conn: Connection, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not keys:
        return {}
    rows = conn.execute(select(tasks).where(tasks.c.idempotency_key.in_(list(keys)))).mappings()
    return {r["idempotency_key"]: dict(r) for r in rows}


def load_unfinished(conn: Connection) -> list[dict[str, Any]]:
    """Every task not in a final state, in submission order (for recovery at start)."""
    rows = conn.execute(
        select(tasks)
        .where(tasks.c.status.in_(("pending", "retrying", "assigned", "running", "waiting_input")))
        .order_by(tasks.c.seq)
    )
    return [dict(r) for r in rows.mappings()]


def counts_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(tasks.c.status, func.count()).group_by(tasks.c.status))
    return {status: int(n) for status, n in rows.all()}


def set_interactive(conn: Connection, task_id: str, lease: int, status: str) -> bool:
    """A `tty: true` attempt waits for input (`waiting_input`) or runs again (`running`); fenced by
    lease. False when the attempt has ended or another holds the task."""
    res = conn.execute(
        update(tasks)
        .where(
            tasks.c.id == task_id, tasks.c.lease == lease, tasks.c.status.in_(("running", "waiting_input"))
        )
        .values(status=status)
    )
    return bool(res.rowcount)
