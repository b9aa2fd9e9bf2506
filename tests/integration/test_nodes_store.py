"""The shared queue's read (hived.store.nodes.shared_work) on a real PostgreSQL: a node whose own
queue holds many tasks (held by a pause, say) still finds the other nodes' tasks behind them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from hived.store import nodes as node_store
from hived.store.db import Database

pytestmark = pytest.mark.pg


def insert(conn: Any, first: int, count: int, priority: int = 5) -> list[str]:
    conn.execute(
        text(
            "INSERT INTO tasks (id, seq, type, priority, status, payload, attempts, max_attempts, options, "
            "created_at, throttled, requires) SELECT 't' || g, g, 'noop', CAST(:priority AS integer), "
            "'pending', '{}', 0, 3, '{}', now(), 0, '[]' "
            "FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) g"
        ),
        {"first": first, "last": first + count - 1, "priority": priority},
    )
    return [f"t{g}" for g in range(first, first + count)]


def test_tasks_behind_many_held_ones_are_found(pg_database: str) -> None:
    async def go() -> tuple[list[str], list[str], list[str]]:
        db = Database(pg_database)
        await db.migrate()
        db.start()  # the writer
        try:
            others = await db.write(lambda c: insert(c, 1, 7))  # older: behind, newest first
            held = set(await db.write(lambda c: insert(c, 100, 3000)))  # this node's own, all held
            late = await db.write(lambda c: insert(c, 5000, 2, priority=1))  # lower priority, last
            found = await db.read(lambda c: node_store.shared_work(c, held.__contains__, 5))
            everything = await db.read(lambda c: node_store.shared_work(c, held.__contains__, 50))
            return [r["id"] for r in found], [r["id"] for r in everything], others + late
        finally:
            await db.close()

    found, everything, others = asyncio.run(go())
    assert found == ["t7", "t6", "t5", "t4", "t3"]  # the highest priority, the newest first
    assert everything == ["t7", "t6", "t5", "t4", "t3", "t2", "t1", "t5001", "t5000"]
    assert sorted(everything) == sorted(others)


def test_notifications_sent_at_once_all_arrive(pg_database: str) -> None:
    """One node's sends that overlap (a cancel beside a freed-holds notice) take turns on its one
    connection: none is dropped (a second statement at once is refused by the driver)."""
    from hived.store.wire import Wire

    async def run() -> tuple[list[bool], list[int]]:
        sender, receiver = Wire(pg_database, "alpha"), Wire(pg_database, "beta")
        heard: list[int] = []
        receiver.on("n", lambda _sender, body: heard.append(body["i"]))
        for wire in (sender, receiver):
            wire.start()
            await asyncio.wait_for(wire.connected.wait(), 10)
        try:
            sent = await asyncio.gather(*[sender.send("n", {"i": i}) for i in range(30)])
            deadline = asyncio.get_running_loop().time() + 5
            while len(heard) < 30 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
            return list(sent), sorted(heard)
        finally:
            await sender.stop()
            await receiver.stop()

    sent, heard = asyncio.run(run())
    assert sent == [True] * 30
    assert heard == list(range(30))


def test_a_session_cut_mid_transaction_does_not_stop_the_others_marking_nodes_lost(pg_database: str) -> None:
    """n3's network is cut in the middle of its heartbeat's transaction: its row stays locked until
    the server ends that session (idle in transaction), so n2 still marks n1 and n3 lost."""

    async def go() -> tuple[list[str], str]:
        cut = Database(pg_database, idle_in_transaction=1.0)  # n3's connections
        n2 = Database(pg_database)
        await n2.migrate()
        n2.start()
        try:
            for name in ("n1", "n2", "n3"):
                await n2.write(lambda c, name=name: node_store.join(c, name, "h", 1, None))
            back = text("UPDATE nodes SET heartbeat_at = now() - interval '1 hour' WHERE name <> 'n2'")
            await n2.write(lambda c: c.execute(back))
            assert cut._async is not None
            async with cut._async.connect() as held:  # n3 beats, then its network goes silent
                await held.execute(text("UPDATE nodes SET pid = 3 WHERE name = 'n3'"))
                lost = await asyncio.wait_for(n2.write(lambda c: node_store.mark_lost(c, "n2", 5.0)), 30)
                try:
                    await held.execute(text("SELECT 1"))
                    after = "still open"
                except Exception as exc:  # the server ended it
                    after = str(exc)
                    await held.invalidate()
            return sorted(lost), after
        finally:
            await n2.close()
            await cut.close()

    lost, after = asyncio.run(go())
    assert lost == ["n1", "n3"]
    assert after != "still open"  # the server ended it


def prepare(conn: Any, task: str, status: str, lease: int) -> None:
    conn.execute(
        text("UPDATE tasks SET status = :s, lease = :lease WHERE id = :t"),
        {"s": status, "lease": lease, "t": task},
    )
    conn.execute(
        text("INSERT INTO task_attempts (lease, task_id, number, started_at) VALUES (:lease, :t, 1, now())"),
        {"lease": 10 + int(task[1]), "t": task},
    )


@pytest.mark.parametrize("alone", [False, True], ids=["in a transaction", "alone in autocommit"])
def test_an_end_is_written_only_where_the_attempt_is_still_the_current_one(
    pg_database: str, alone: bool
) -> None:
    """hived.store.ends.finish_current, the fenced end of a batch of attempts in one statement; in a
    transaction (batched with other writes), or alone in the writer's batch, as that statement in
    autocommit (hived.store.prepared.OneStatement: the transaction's way must not run)."""
    from datetime import UTC, datetime

    from hived.store.ends import FINISH_CURRENT, finish_args, finish_current, finished_ids
    from hived.store.prepared import OneStatement

    def not_in_a_transaction(conn: Any) -> None:
        raise AssertionError("the end alone in its batch ran in a transaction")

    setup = [  # task, its status, its lease now; every attempt below has lease 10 + k
        ("t1", "running", 11),  # current: written
        ("t2", "running", 99),  # moved by another node (a new lease): refused
        ("t3", "completed", 13),  # ended already (a cancel won): refused
        ("t4", "assigned", 14),  # never marked running: written, its start kept from the end
    ]

    async def go() -> tuple[set[str], dict[str, Any], dict[int, Any]]:
        db = Database(pg_database)
        await db.migrate()
        db.start()
        try:
            await db.write(lambda c: insert(c, 1, 4))
            await db.write(lambda c: [prepare(c, *row) for row in setup])
            now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
            ends = [
                {
                    "task_id": task,
                    "lease": 10 + int(task[1]),
                    "status": "completed",
                    "result": {"n": int(task[1]), "s": "é"},
                    "outcome": "completed",
                    "started_at": now,
                }
                for task, _, _ in setup
            ]
            if alone:
                args = finish_args(ends, now)
                one = OneStatement(not_in_a_transaction, FINISH_CURRENT, args, finished_ids)
                written = await db.write(one)
            else:
                written = await db.write(lambda c: finish_current(c, ends, now))
            tasks = await db.read(
                lambda c: {
                    r.id: r for r in c.execute(text("SELECT id, status, result, completed_at FROM tasks"))
                }
            )
            attempts = await db.read(
                lambda c: {
                    r.lease: r for r in c.execute(text("SELECT lease, outcome, ended_at FROM task_attempts"))
                }
            )
            return written, tasks, attempts
        finally:
            await db.close()

    written, tasks, attempts = asyncio.run(go())
    assert written == {"t1", "t4"}
    assert tasks["t1"].status == "completed" and tasks["t1"].result == {"n": 1, "s": "é"}
    assert tasks["t1"].completed_at is not None and tasks["t4"].status == "completed"
    assert tasks["t2"].status == "running" and tasks["t2"].result is None
    assert tasks["t3"].result is None
    assert attempts[11].outcome == "completed" and attempts[14].outcome == "completed"
    assert attempts[12].outcome is None and attempts[12].ended_at is None  # the moved task's: untouched
    assert attempts[13].outcome is None
