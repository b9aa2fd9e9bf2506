"""Usage statements: recording reports once per (lease, seq), the sums every view and budget reads,
the `hivectl usage` report, and what was added to runs' budgets. Each takes an open connection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from hived.store.models import AgentRow, AttemptRow, RunBudgetRow, RunRow, TaskRow, UsageRecordRow

records = UsageRecordRow.__table__
run_budgets = RunBudgetRow.__table__
attempts = AttemptRow.__table__
tasks = TaskRow.__table__
runs = RunRow.__table__
agents = AgentRow.__table__
SUMS = (
    func.coalesce(func.sum(records.c.cost_micro), 0),
    func.coalesce(func.sum(records.c.input_tokens), 0),
    func.coalesce(func.sum(records.c.output_tokens), 0),
    func.count(),
)
Sums = tuple[int, int, int, int]  # micro-USD, input tokens, output tokens, reports
# The statements of the task path are built once (building one costs more than running it on SQLite).
OWNERS = (
    select(attempts.c.lease, attempts.c.task_id, attempts.c.agent_id, tasks.c.run_id)
    .join(tasks, tasks.c.id == attempts.c.task_id)
    .where(attempts.c.lease.in_(bindparam("b_leases", expanding=True)))
)
RECORD = {
    name: upsert(records).on_conflict_do_nothing(index_elements=["lease", "seq"])
    for name, upsert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def owners(conn: Connection, leases: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The attempts these leases name: {lease: {task_id, run_id, agent_id}} (unknown ones left out)."""
    wanted = sorted(set(leases))
    if not wanted:
        return {}
    return {r.lease: dict(r._mapping) for r in conn.execute(OWNERS, {"b_leases": wanted})}


def record(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert the reports not recorded yet (by lease and seq); returns those that were new."""
    statement = RECORD["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
    return [row for row in rows if conn.execute(statement, row).rowcount == 1]


def _sums_query(column: str, by_day: bool) -> Any:
    col = records.c[column]
    query = select(col, *SUMS).where(col.in_(bindparam("b_keys", expanding=True))).group_by(col)
    return query.where(records.c.day == bindparam("b_day")) if by_day else query


SUMS_BY = {
    (column, by_day): _sums_query(column, by_day)
    for column in ("task_id", "run_id", "agent_id", "lease")
    for by_day in (False, True)
}
# A task's usage: per attempt (NULL: a record no attempt names), summed again for the task's total.
TASK_SUMS = (
    select(attempts.c.number, *SUMS)
    .select_from(records.outerjoin(attempts, attempts.c.lease == records.c.lease))
    .where(records.c.task_id == bindparam("b_task"))
    .group_by(attempts.c.number)
)


def sums_by(conn: Connection, column: str, keys: Iterable[str], day: str | None = None) -> dict[str, Sums]:
    """Sums per value of `column` (task_id, run_id, agent_id, lease) among `keys`, on `day` if given."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    query = SUMS_BY[(column, day is not None)]
    params = {"b_keys": wanted} if day is None else {"b_keys": wanted, "b_day": day}
    return {row[0]: _sums(row[1:]) for row in conn.execute(query, params)}


def task_sums(conn: Connection, task_id: str) -> tuple[Sums | None, dict[int, Sums]]:
    """A task's sums (None without any report) and its sums per attempt number, in one statement."""
    total: Sums | None = None
    per_attempt: dict[int, Sums] = {}
    for row in conn.execute(TASK_SUMS, {"b_task": task_id}):
        sums = _sums(row[1:])
        total = sums if total is None else _added(total, sums)
        if row[0] is not None:
            per_attempt[int(row[0])] = sums
    return total, per_attempt


def _added(a: Sums, b: Sums) -> Sums:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]


def day_total(conn: Connection, day: str) -> Sums:
    return _sums(conn.execute(select(*SUMS).where(records.c.day == day)).one())


def _sums(row: Sequence[Any]) -> Sums:
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def report(conn: Connection, by: str, since: datetime | None) -> list[dict[str, Any]]:
    """`hivectl usage --by BY --since`: rows of {key, name, micro, input, output, reports}."""
    key, name, joined = _grouping(by)
    query = select(key.label("key"), name.label("name"), *SUMS).select_from(joined)
    if since is not None:
        query = query.where(records.c.recorded_at >= since)
    query = query.group_by(key, name).order_by(SUMS[0].desc(), key)
    return [
        {
            "key": r[0],
            "name": r[1],
            **dict(zip(("micro", "input", "output", "reports"), _sums(r[2:]), strict=True)),
        }
        for r in conn.execute(query)
    ]


def _grouping(by: str) -> tuple[Any, Any, Any]:
    if by == "agent":
        return records.c.agent_id, agents.c.name, records.outerjoin(agents, agents.c.id == records.c.agent_id)
    if by in ("workflow", "run"):
        joined = records.outerjoin(runs, runs.c.id == records.c.run_id)
        return (
            (runs.c.workflow, runs.c.workflow, joined)
            if by == "workflow"
            else (
                records.c.run_id,
                runs.c.workflow,
                joined,
            )
        )
    column = {"model": records.c.model, "day": records.c.day, "task": records.c.task_id}[by]
    return column, column, records


def run_added(conn: Connection, run_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """What resumes added to these runs' budgets: {run id: (micro-USD, tokens)}."""
    wanted = sorted(set(run_ids))
    if not wanted:
        return {}
    query = select(run_budgets).where(run_budgets.c.run_id.in_(wanted))
    return {r.run_id: (int(r.added_micro), int(r.added_tokens)) for r in conn.execute(query)}


def add_to_run(conn: Connection, run_id: str, micro: int, tokens: int, now: datetime) -> None:
    changed = conn.execute(
        update(run_budgets)
        .where(run_budgets.c.run_id == run_id)
        .values(
            added_micro=run_budgets.c.added_micro + micro,
            added_tokens=run_budgets.c.added_tokens + tokens,
            updated_at=now,
        )
    ).rowcount
    if not changed:
        conn.execute(
            insert(run_budgets),
            [{"run_id": run_id, "added_micro": micro, "added_tokens": tokens, "updated_at": now}],
        )
