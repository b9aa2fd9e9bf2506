"""A read that scans a whole table (the counts of `/status`) runs, on SQLite, in a thread on a
connection of its own: the event loop serves other requests meanwhile."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from hived.store.db import Database


async def test_a_scan_runs_off_the_loop_and_the_loop_serves_meanwhile(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'hive.db'}")
    await db.migrate()
    db.start()
    try:
        loop_thread = threading.get_ident()
        started, release = threading.Event(), threading.Event()

        def scan(conn: Connection) -> tuple[int, int]:
            started.set()
            assert release.wait(10)  # (held until the loop has answered something else)
            return threading.get_ident(), int(conn.execute(text("SELECT count(*) FROM tasks")).scalar_one())

        pending = asyncio.ensure_future(db.read(scan, scan=True))
        assert await asyncio.to_thread(started.wait, 10)  # (the loop is free meanwhile, or this hangs)
        other = await db.read(lambda conn: int(conn.execute(text("SELECT 7")).scalar_one()))  # not held
        release.set()
        thread, count = await pending
        assert other == 7 and thread != loop_thread and count == 0
        assert await db.read(lambda conn: threading.get_ident()) == loop_thread  # an ordinary read
    finally:
        release.set()
        await db.close()
