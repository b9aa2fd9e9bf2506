"""One hived on PostgreSQL ends attempts alone in the writer's batch as one statement in autocommit
(hived.store.ends.FINISH): the rows it leaves are those of `hived.store.tasks.finish`, the two
UPDATEs in a transaction that it replaces (and that SQLite, or a batch of several writes, still
runs)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from hived.store import ends
from hived.store import tasks as task_store
from hived.store.db import Database
from hived.store.prepared import OneStatement
from tests.integration.test_nodes_store import insert, prepare

pytestmark = pytest.mark.pg

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SETUP = [  # task, its status, its lease now; every attempt has lease 10 + k
    ("t1", "running", 11),  # current: both rows written
    ("t2", "running", 99),  # its lease moved on: the task is not written, the attempt (by its lease) is
    ("t3", "completed", 13),  # ended already (a cancel won): likewise
    ("t4", "assigned", 14),  # never marked running: written, its start taken from the end
    ("t5", "running", 15),  # fails for a retry: no result, an error, the next attempt's time
]
ENDS: list[dict[str, Any]] = [
    {"task_id": t, "lease": 10 + int(t[1]), "status": "completed", "result": {"n": int(t[1]), "s": "é"},
     "outcome": "completed", "started_at": NOW}
    for t, _, _ in SETUP[:4]
] + [
    {"task_id": "t5", "lease": 15, "status": "retrying", "result": None, "error": "boom",
     "next_attempt_at": NOW, "outcome": "failed", "reason": "error", "output": "tail", "started_at": NOW}
]  # fmt: skip


def not_in_a_transaction(conn: Any) -> None:
    raise AssertionError("the end alone in its batch ran in a transaction")


def rows(conn: Any) -> tuple[list[Any], list[Any]]:
    tasks = conn.execute(
        text(
            "SELECT id, status, nullif(result, 'null'::jsonb) AS result, error, next_attempt_at, "
            "completed_at, started_at FROM tasks ORDER BY id"
        )
    )
    attempts = conn.execute(
        text("SELECT lease, ended_at, outcome, reason, error, output FROM task_attempts ORDER BY lease")
    )
    return [tuple(r) for r in tasks], [tuple(r) for r in attempts]


def ended(pg_database: str, one_statement: bool) -> tuple[Any, tuple[list[Any], list[Any]]]:
    async def go() -> tuple[Any, tuple[list[Any], list[Any]]]:
        db = Database(pg_database)
        await db.migrate()
        db.start()
        try:
            await db.write(
                lambda c: [c.execute(text(f"DELETE FROM {t}")) for t in ("task_attempts", "tasks")]
            )
            await db.write(lambda c: insert(c, 1, len(SETUP)))
            await db.write(lambda c: [prepare(c, *row) for row in SETUP])
            if one_statement:
                written = await db.write(
                    OneStatement(not_in_a_transaction, *ends.finish_statement(ENDS, NOW))
                )
            else:
                written = await db.write(lambda c: task_store.finish(c, ENDS, NOW))
            return written, await db.read(rows)
        finally:
            await db.close()

    return asyncio.run(go())


def test_one_statement_ends_attempts_as_the_transaction_did(pg_database: str) -> None:
    written, (tasks, attempts) = ended(pg_database, one_statement=True)
    assert written is None  # every end counts as written: one hived owns the database
    assert (written, (tasks, attempts)) == (None, ended(pg_database, one_statement=False)[1])
    by_id = {t[0]: t for t in tasks}
    assert by_id["t1"][1:4] == ("completed", {"n": 1, "s": "é"}, None)
    assert by_id["t2"][1:3] == ("running", None) and by_id["t3"][2] is None
    assert by_id["t4"][1] == "completed" and by_id["t4"][6] == NOW
    assert by_id["t5"][1:5] == ("retrying", None, "boom", NOW) and by_id["t5"][5] is None
    assert [a[2] for a in attempts] == ["completed", "completed", "completed", "completed", "failed"]
    assert attempts[4][3:] == ("error", "boom", "tail")
