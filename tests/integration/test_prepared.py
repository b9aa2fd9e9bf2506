"""The hot statements run on the DBAPI cursor (hived/store/prepared.py) store exactly what
SQLAlchemy's `conn.execute` stores, and fail as it fails, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.engine import Connection

from hived.model.schemas import TaskSubmit
from hived.orchestrator import AgentOrchestrator
from hived.store import tasks as task_store
from hived.store.db import DuplicateKey

NOW = datetime(2026, 12, 1, 11, 30, 5, 123456, tzinfo=UTC)


@pytest.fixture
async def orch(db_url: str, tmp_path: Path) -> AsyncIterator[AgentOrchestrator]:
    orchestrator = AgentOrchestrator(db_url, tmp_path / "state")
    await orchestrator.start()
    yield orchestrator
    await orchestrator.shutdown()


def stored(conn: Connection, table: str, key: str, value: Any) -> dict[str, Any]:
    """A row as the database holds it (the driver's values, no SQLAlchemy types on the way)."""
    row = conn.exec_driver_sql(f"SELECT * FROM {table} WHERE {key} = {value!r}").mappings().one()
    return {k: v for k, v in row.items() if k not in ("id", "seq", "lease", "task_id", "idempotency_key")}


def new_row(orch: AgentOrchestrator, key: str) -> dict[str, Any]:
    sub = TaskSubmit(
        type="t",
        payload={"n": 1, "s": "é"},
        priority=7,
        requires=["gpu"],
        labels={"a": "b"},
        idempotency_key=key,
    )
    return orch.tasks.new_row(sub)


async def test_prepared_statements_store_what_sqlalchemy_stores(orch: AgentOrchestrator) -> None:
    fast = new_row(orch, "fast")
    slow = {**new_row(orch, "slow"), "created_at": fast["created_at"]}
    lease = {fast["id"]: 900001, slow["id"]: 900002}

    def attempt(row: dict[str, Any]) -> dict[str, Any]:
        return {"task_id": row["id"], "agent_id": "a1", "lease": lease[row["id"]], "number": 1}

    def end(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "task_id": row["id"],
            "lease": lease[row["id"]],
            "status": "completed",
            "result": {"ok": [1, 2.5, None, "x"]},
            "outcome": "succeeded",
            "output": "out\n",
            "started_at": NOW,
        }

    def write(conn: Connection) -> int:
        task_store.insert_task(conn, fast)  # the prepared path
        conn.execute(task_store.INSERT_TASK.statement, [slow])  # SQLAlchemy's
        task_store.assign(conn, [attempt(fast)], NOW)
        conn.execute(task_store.ASSIGN_TASK.statement, [_assign_params(attempt(slow))])
        conn.execute(task_store.INSERT_ATTEMPT.statement, [_attempt_params(attempt(slow))])
        matched = task_store.finish(conn, [end(fast)], NOW)
        conn.execute(task_store.FINISH_TASK.statement, [_finish_params(end(slow))])
        conn.execute(task_store.FINISH_ATTEMPT.statement, [_attempt_end_params(end(slow))])
        return matched

    assert await orch.db.write(write) == 1  # the lease matched: one task ended
    for table, key in (("tasks", "id"), ("task_attempts", "task_id")):
        fast_row, slow_row = await orch.db.read(
            lambda c, t=table, k=key: (stored(c, t, k, fast["id"]), stored(c, t, k, slow["id"]))
        )
        assert fast_row == slow_row, table
    task = await orch.tasks.get(fast["id"])
    assert task.status == "completed" and task.result == {"ok": [1, 2.5, None, "x"]}
    assert task.labels == {"a": "b"} and task.payload == {"n": 1, "s": "é"}


async def test_a_broken_constraint_is_sqlalchemys_error(orch: AgentOrchestrator) -> None:
    row = new_row(orch, "k")
    await orch.db.write(lambda c: task_store.insert_task(c, row))
    again = {**new_row(orch, "k")}  # another id, the same idempotency key
    with pytest.raises(DuplicateKey):
        await orch.db.write(lambda c: task_store.insert_task(c, again))
    count = await orch.db.read(lambda c: c.execute(text("SELECT count(*) FROM tasks")).scalar())
    assert count == 1  # nothing of the refused write stays


async def test_a_callable_default_goes_through_sqlalchemy(orch: AgentOrchestrator) -> None:
    row = new_row(orch, "d")
    del row["created_at"]  # its default is a function: conn.execute computes it
    await orch.db.write(lambda c: task_store.insert_task(c, row))
    task = await orch.tasks.get(row["id"])
    assert task.created_at is not None and task.created_at.tzinfo is not None


def _assign_params(r: dict[str, Any]) -> dict[str, Any]:
    return {"b_id": r["task_id"], "b_agent": r["agent_id"], "b_lease": r["lease"], "b_number": r["number"]}


def _attempt_params(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, "started_at": NOW}


def _finish_params(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "b_id": r["task_id"],
        "b_lease": r["lease"],
        "b_status": r["status"],
        "b_result": r["result"],
        "b_error": None,
        "b_next": None,
        "b_completed": NOW,
        "b_started": r["started_at"],
    }


def _attempt_end_params(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "b_lease": r["lease"],
        "b_ended": NOW,
        "b_outcome": r["outcome"],
        "b_reason": None,
        "b_error": None,
        "b_output": r["output"],
    }


async def test_a_submission_is_written_whole_or_not_at_all(orch: AgentOrchestrator) -> None:
    """A submit's task and first attempt (one statement on PostgreSQL): both, or neither."""
    now = datetime.now(UTC)
    first, second = new_row(orch, "one"), new_row(orch, "two")
    attempt = {"agent_id": "a1", "lease": 900077, "number": 1}
    await orch.db.write(task_store.submission(first, [{**attempt, "task_id": first["id"]}], now))
    taken = {**attempt, "task_id": second["id"]}  # the same lease: the attempt's key is taken
    with pytest.raises(DuplicateKey):
        await orch.db.write(task_store.submission(second, [taken], now))

    def rows(conn: Connection) -> tuple[list[str], list[str]]:
        tasks = conn.execute(text("SELECT id FROM tasks")).scalars().all()
        attempts = conn.execute(text("SELECT task_id FROM task_attempts")).scalars().all()
        return list(tasks), list(attempts)

    assert await orch.db.read(rows) == ([first["id"]], [first["id"]])
    sql, args = task_store.submission(first, [{**attempt, "task_id": first["id"]}], now).one_statement(
        asyncpg.dialect()
    ) or ("", [])
    n = len(args) - 5  # the task's parameters (its keys and a default), then the attempt's, numbered on
    assert sql.startswith("WITH s0 AS (INSERT INTO tasks (") and f"${n + 1}::BIGINT" in sql
    assert n > len(first) and args[n] == 900077
