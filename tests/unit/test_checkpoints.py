"""SQLite commits run on the event loop and the WAL checkpoints in a thread of their own: the writer
never checkpoints, the Checkpointer does, and what it copied is in the database file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from hived.store import checkpoints
from hived.store.db import Database


async def test_commits_leave_the_wal_to_the_checkpointer(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(checkpoints, "NUDGE_AFTER", 50)
    monkeypatch.delenv("HIVE_SQLITE_SYNCHRONOUS", raising=False)
    path = tmp_path / "hive.db"
    db = Database(f"sqlite:///{path}")
    assert db._thread is None and db._checkpointer is not None  # synchronous=NORMAL: on the loop
    db._checkpointer.every = 3600.0  # only the nudge after 50 commits may wake it
    await db.migrate()
    db.start()
    try:
        await db.write(lambda c: c.execute(text("CREATE TABLE t (n INTEGER)")))
        for n in range(48):
            await db.write(lambda c, n=n: c.execute(text("INSERT INTO t VALUES (:n)"), {"n": n}))
        assert db._checkpointer.checkpoints == 0
        await db.write(lambda c: c.execute(text("INSERT INTO t VALUES (48)")))
        for _ in range(1000):  # the 50th commit nudged the thread: a poll with a deadline
            if db._checkpointer.checkpoints:
                break
            await asyncio.sleep(0.01)
        assert db._checkpointer.checkpoints == 1
        log_frames, copied = db._checkpointer.last
        assert copied == log_frames >= 50  # every commit was still in the WAL: the writer never checkpoints
    finally:
        await db.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (49,)
    conn.close()


@pytest.mark.parametrize(("synchronous", "threaded"), [("FULL", True), ("NORMAL", False), ("bogus", False)])
def test_full_sync_commits_in_a_writer_thread(
    tmp_path: Path, monkeypatch: Any, synchronous: str, threaded: bool
) -> None:
    """With HIVE_SQLITE_SYNCHRONOUS=FULL a commit waits for an fsync: that stays off the loop."""
    monkeypatch.setenv("HIVE_SQLITE_SYNCHRONOUS", synchronous)
    db = Database(f"sqlite:///{tmp_path}/hive.db")
    assert (db._thread is not None) is threaded
    assert (db._checkpointer is None) is threaded


async def test_a_heavy_batch_runs_off_the_loop_and_a_light_one_on_it(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A batch submit of hundreds of rows would hold the event loop (and every other request) for
    tens of milliseconds: it is written in a thread; an ordinary write stays on the loop."""
    monkeypatch.delenv("HIVE_SQLITE_SYNCHRONOUS", raising=False)
    db = Database(f"sqlite:///{tmp_path}/hive.db")
    await db.migrate()
    db.start()
    try:
        light = await db.write(lambda c: threading.get_ident())
        heavy = await db.write(lambda c: threading.get_ident(), heavy=True)
        again = await db.write(lambda c: threading.get_ident())
    finally:
        await db.close()
    assert light == again == threading.get_ident() != heavy
