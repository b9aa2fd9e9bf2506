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
