"""Engines, pragmas, migrations and the group-commit writer.

SQLite (the embedded default): WAL, `synchronous=NORMAL` (survives `kill -9` of hived; the last
commits may be lost on power loss, set `HIVE_SQLITE_SYNCHRONOUS=FULL` to survive that too),
`busy_timeout`, one writer connection taking `BEGIN IMMEDIATE`, readers on their own pool.
PostgreSQL (asyncpg): one pool for both. No SQLite-only SQL reaches PostgreSQL.

Every write goes through `Database.write(fn)`: writes queued while a transaction is in flight are
committed together in the next one (group commit), which is what makes thousands of small
submits, assignments and completions per second cheap on both backends.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = logging.getLogger("hived.store")
T = TypeVar("T")
WriteFn = Callable[[AsyncConnection], Awaitable[Any]]
MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseError(RuntimeError):
    """The database cannot be reached or set up; the message says which and why."""


def _sqlite_pragmas(engine: AsyncEngine, writer: bool) -> None:
    synchronous = os.environ.get("HIVE_SQLITE_SYNCHRONOUS", "NORMAL").upper()

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite's is broken)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous if synchronous in ('NORMAL', 'FULL') else 'NORMAL'}")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.writer = create_async_engine(url, pool_size=1, max_overflow=0)
            self.reader = create_async_engine(url, pool_size=4, max_overflow=4)
            _sqlite_pragmas(self.writer, writer=True)
            _sqlite_pragmas(self.reader, writer=False)
        elif self.dialect == "postgresql":
            self.writer = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
            self.reader = self.writer
        else:
            raise DatabaseError(
                f"unsupported database {parsed.drivername!r}: use sqlite+aiosqlite or postgresql+asyncpg"
            )
        self._queue: asyncio.Queue[tuple[WriteFn, asyncio.Future[Any]]] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None

    def describe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    # --- migrations -------------------------------------------------------------------------------

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic), as hived starts."""
        try:
            async with self.writer.begin() as conn:
                await conn.run_sync(_upgrade)
        except OSError as exc:
            raise DatabaseError(f"cannot reach the database {self.describe()}: {exc}") from exc

    async def migrations_current(self) -> bool:
        async with self.reader.connect() as conn:
            return bool(await conn.run_sync(_is_current))

    # --- group-commit writer ----------------------------------------------------------------------

    def start(self) -> None:
        if self._writer_task is None:
            self._writer_task = asyncio.create_task(self._write_loop(), name="db-writer")

    async def write(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `fn` in a write transaction shared with other queued writes; returns after commit."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((fn, future))
        return await future

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[WriteFn, asyncio.Future[Any]]]) -> None:
        results: list[Any] = []
        try:
            async with self.writer.begin() as conn:
                for fn, _ in batch:
                    results.append(await fn(conn))
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            # One write failed: run each alone so only the faulty one sees its error.
            for item in batch:
                await self._commit([item])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def close(self) -> None:
        if self._writer_task is not None:
            while not self._queue.empty():
                await asyncio.sleep(0.01)
            self._writer_task.cancel()
            try:
                await self._writer_task
            except asyncio.CancelledError:
                pass
            self._writer_task = None
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def _alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _upgrade(conn: Connection) -> None:
    command.upgrade(_alembic_config(conn), "head")


def _is_current(conn: Connection) -> bool:
    heads = set(ScriptDirectory.from_config(_alembic_config(conn)).get_heads())
    return set(MigrationContext.configure(conn).get_current_heads()) == heads
