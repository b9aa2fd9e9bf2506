"""Engines, pragmas, migrations and the group-commit writer.

Every write goes through `await Database.write(fn)` and every read through `await Database.read(fn)`,
where `fn` is a plain function of a SQLAlchemy `Connection` (the statements in this package). Writes
queued while a transaction is in flight are committed together in the next one (group commit).

PostgreSQL: an `AsyncEngine` over asyncpg; `fn` runs through `AsyncConnection.run_sync`, so each
statement is awaited on asyncpg. SQLite (the embedded default): the file is local and has one
writer. WAL, `synchronous=NORMAL` (survives `kill -9`; the last commits may be lost on power loss),
`busy_timeout`, and `BEGIN IMMEDIATE` for writes. A commit then only appends to the WAL, so write
batches and reads, microseconds each, run directly on the event loop, and the WAL checkpoints (what
waits on the disk) run in a thread of their own (hived/store/checkpoints.py). With
`HIVE_SQLITE_SYNCHRONOUS=FULL` every commit waits for an fsync: batches then run in one writer thread
(one thread hop per batch).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hived.errors import HiveError
from hived.store.checkpoints import Checkpointer
from hived.store.engines import (
    pooled_read,
    postgres_engine,
    sqlite_engine,
    sqlite_synchronous,
    sqlite_transaction,
)
from hived.store.files import private_sqlite_files
from hived.store.prepared import OneStatement

log = logging.getLogger("hived.store")
T = TypeVar("T")
Statement = Callable[[Connection], Any]
Queued = tuple[Statement, "asyncio.Future[Any]", bool]  # a write, its caller's future, heavy
MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseError(RuntimeError):
    """The database cannot be reached or set up; the message says which and why."""


class DuplicateKey(RuntimeError):
    """A write broke a unique constraint (an idempotency key, a name, a context key taken
    concurrently): the caller decides what that means."""


class DatabaseUnavailable(HiveError):
    """The database did not answer (down, restarting, unreachable): the API says 503, the caller
    may try again. Nothing of the request was committed."""

    status_code = 503


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, OSError | OperationalError | InterfaceError):  # TimeoutError is an OSError
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    for err in (exc, getattr(exc, "orig", None), exc.__cause__):
        if err is None:
            continue
        if type(err) is sqlite3.DatabaseError:  # a damaged file (a WAL cut short, a torn page): not a bug
            return True
        if type(err).__module__.startswith("asyncpg") and type(err).__name__ in DISCONNECTS:
            return True
        if str(getattr(err, "sqlstate", None) or "").startswith(UNAVAILABLE_STATES):
            return True
    return False


# SQLSTATEs of a server that cannot serve this database now: connection exceptions, shutdown or
# start-up (57P), too many connections, a database not accepting connections, or gone.
UNAVAILABLE_STATES = ("08", "57P", "53300", "55000", "3D000")


# asyncpg's errors without a SQLSTATE for a connection that is gone (the rest carry one above)
DISCONNECTS = {"ConnectionDoesNotExistError", "InterfaceError"}
# ... and, on the raw connection (Database._autocommit), for one whose protocol broke under it (the
# server ended it while idle): SQLAlchemy's adapter would have failed the BEGIN before it
CLIENT_SIDE = DISCONNECTS | {"InternalClientError"}


def _kept(conn: Connection | None, engine: Engine | None) -> Connection:
    """`conn` while usable; a new one of `engine` if there is none, or SQLAlchemy closed or invalidated it."""
    if conn is None or conn.closed or conn.invalidated:
        assert engine is not None
        return engine.connect()
    return conn


class Database:
    def __init__(self, url: str, idle_in_transaction: float = 7.5) -> None:
        """`idle_in_transaction` (s, PostgreSQL): the server ends a session of this hived that stays
        that long inside a transaction without a statement (its network was cut mid-transaction), so
        the rows it locked do not stop the other nodes (they mark it lost, move its work)."""
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._sync_writer: Engine | None = None
        self._sync_reader: Engine | None = None
        self._async: AsyncEngine | None = None
        self._reads: AsyncEngine | None = None  # PostgreSQL: the same pool, reads in autocommit
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None  # SQLite FULL: the writer
        self._checkpointer: Checkpointer | None = None  # SQLite NORMAL: commits run on the loop
        self._writer_conn: Connection | None = None
        self._heavy: concurrent.futures.ThreadPoolExecutor | None = None  # SQLite NORMAL: big batches
        self._scans: concurrent.futures.ThreadPoolExecutor | None = None  # SQLite: reads of a whole table
        self._reader_conn: Connection | None = None
        # PostgreSQL: each lane's connection (0: every write; 1: submits, see `write`)
        self._async_conns: list[AsyncConnection | None] = [None, None]
        # each lane's (connection, its asyncpg connection): asking SQLAlchemy for it is a greenlet hop
        self._drivers: list[tuple[AsyncConnection, Any] | None] = [None, None]
        self.path: str | None = None  # the SQLite file
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                self.path = parsed.database
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            sync_url = parsed.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False)
            self._sync_writer = sqlite_engine(sync_url, writer=True)
            self._sync_reader = sqlite_engine(sync_url, writer=False)
            if sqlite_synchronous() == "FULL" or self.path is None:
                self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hive-db-writer")
            else:
                self._checkpointer = Checkpointer(self.path)
        elif self.dialect == "postgresql":
            if parsed.drivername != "postgresql+asyncpg":
                parsed = parsed.set(drivername="postgresql+asyncpg")
            self._async = postgres_engine(parsed, idle_in_transaction)
            self._reads = self._async.execution_options(isolation_level="AUTOCOMMIT")
        else:
            raise DatabaseError(
                f"unsupported database {parsed.drivername!r}: use sqlite:///PATH or "
                "postgresql+asyncpg://USER:PASSWORD@HOST/DB"
            )
        self.unavailable = 0  # operations failed for want of the database (a metric)
        self._queues: list[asyncio.Queue[Queued]] = [asyncio.Queue() for _ in range(2 if self._async else 1)]
        self._writer_tasks: list[asyncio.Task[None]] = []

    def describe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    # --- reads and migrations ---------------------------------------------------------------------

    async def read(self, fn: Callable[[Connection], T], streamed: bool = False, scan: bool = False) -> T:
        """Run `fn` on a connection for reads. PostgreSQL: in autocommit (no BEGIN and ROLLBACK
        around it), unless it is `streamed` (a server-side cursor needs a transaction). SQLite: on the
        loop, but a `scan` (it reads a whole table: the counts of `/status`, 80 ms at a million tasks)
        runs in a thread on a connection of its own, while the loop serves on (sqlite3 lets go of
        the interpreter while SQLite works)."""
        try:
            if self._sync_reader is not None and scan:
                if self._scans is None:
                    self._scans = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hive-db-scan")
                return await asyncio.get_running_loop().run_in_executor(self._scans, self._scan, fn)
            if self._sync_reader is not None:
                conn = self._reader()
                try:
                    return fn(conn)
                finally:
                    conn.rollback()  # autocommit reads: this only ends SQLAlchemy's transaction
            engine = self._async if streamed else self._reads
            assert engine is not None
            return await pooled_read(engine, fn)
        except Exception as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: BaseException) -> BaseException:
        """A lost or refused connection becomes DatabaseUnavailable (503); anything else is a bug."""
        if isinstance(exc, DatabaseUnavailable) or not _unavailable(exc):
            return exc
        self.unavailable += 1
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return DatabaseUnavailable(f"database {self.describe()} unavailable: {detail[:200]}")

    async def _in_transaction(self, fn: Callable[[Connection], T], heavy: bool = False, lane: int = 0) -> T:
        """Run `fn` in a write transaction now. SQLite: on the loop, unless commits wait for an
        fsync (FULL) or the batch is `heavy` (hundreds of rows: it would hold the loop for tens of ms,
        and every other request with it)."""
        if self._sync_writer is not None:

            def run() -> T:
                return sqlite_transaction(self._writer(), fn)

            loop = asyncio.get_running_loop()
            if self._thread is not None:  # FULL: every commit waits for an fsync
                return await loop.run_in_executor(self._thread, run)
            if not heavy:
                return run()
            if self._heavy is None:
                self._heavy = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hive-db-heavy")
            return await loop.run_in_executor(self._heavy, run)
        conn = await self._async_writer(lane)
        try:
            async with conn.begin():
                return await conn.run_sync(fn)
        except IntegrityError:
            raise  # rolled back; the connection is fine
        except BaseException:
            self._async_conns[lane] = None  # lost, or in doubt: the next batch takes a fresh one
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close())
            raise

    async def _autocommit(self, fn: Any, lane: int) -> Any:
        """PostgreSQL: a write that can be one statement (hived.store.prepared.Statements), alone in
        its batch, runs as that statement in autocommit on the writer's asyncpg connection: one round
        trip (and one commit) where BEGIN, each statement and COMMIT took one each."""
        conn = await self._async_writer(lane)
        found = fn.one_statement(conn.dialect)
        if found is None:
            return await self._in_transaction(fn, lane=lane)
        sql, args = found
        try:
            known = self._drivers[lane]
            if known is None or known[0] is not conn:  # (a new connection since)
                known = self._drivers[lane] = (conn, (await conn.get_raw_connection()).driver_connection)
            driver = known[1]
            if isinstance(fn, OneStatement):  # its rows are its result
                return fn.read(await driver.fetch(sql, *args))
            return await driver.execute(sql, *args)
        except Exception as exc:
            if str(getattr(exc, "sqlstate", "")).startswith("23"):  # a constraint: the connection is fine
                raise IntegrityError(sql, args, exc) from exc
            self._async_conns[lane] = None  # lost, or in doubt: the next batch takes a fresh one
            with contextlib.suppress(Exception):  # (not back to the pool: nothing pings it there)
                await asyncio.shield(conn.invalidate())
            if type(exc).__module__.startswith("asyncpg") and type(exc).__name__ in CLIENT_SIDE:
                raise OperationalError(sql, args, exc) from exc  # the connection broke: 503
            raise

    async def _async_writer(self, lane: int = 0) -> AsyncConnection:
        """PostgreSQL's writer connection, kept open (a checkout per batch cost as much as the batch)."""
        conn = self._async_conns[lane]
        if conn is None or conn.closed or conn.invalidated:
            assert self._async is not None
            conn = self._async_conns[lane] = await self._async.connect()
        return conn

    def _scan(self, fn: Callable[[Connection], T]) -> T:
        assert self._sync_reader is not None
        with self._sync_reader.connect() as conn:
            return fn(conn)

    def _reader(self) -> Connection:
        """The SQLite reads' one connection, kept open: they run on the event loop, one at a time."""
        self._reader_conn = _kept(self._reader_conn, self._sync_reader)
        return self._reader_conn

    def _writer(self) -> Connection:
        """The SQLite writer's one connection, kept open (a checkout per batch cost more than it)."""
        self._writer_conn = _kept(self._writer_conn, self._sync_writer)
        return self._writer_conn

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic), as hived starts. A SQLite file is
        created 0600 first (SQLite gives its WAL the same mode) and tightened if it was not."""
        if self.path is not None:
            try:
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
                private_sqlite_files(self.path)
            except OSError as exc:
                reason = exc.strerror or exc
                raise DatabaseError(f"cannot open the database file {self.path}: {reason}") from exc
        try:
            await self._in_transaction(_upgrade)
        except OSError as exc:
            raise DatabaseError(f"cannot reach the database {self.describe()}: {exc}") from exc

    async def migrations_current(self) -> bool:
        return bool(await self.read(_is_current))

    # --- group-commit writer ----------------------------------------------------------------------

    def start(self) -> None:
        if not self._writer_tasks:
            self._writer_tasks = [
                asyncio.create_task(self._write_loop(lane), name=f"db-writer-{lane}")
                for lane in range(len(self._queues))
            ]
        if self._checkpointer is not None:
            self._checkpointer.start()

    async def write(self, fn: Callable[[Connection], T], heavy: bool = False, new_rows: bool = False) -> T:
        """Run `fn` in a write transaction shared with other queued writes; returns after commit.
        `heavy`: it writes hundreds of rows (a batch submit); on SQLite it then runs off the loop.
        `new_rows`: it only inserts rows nothing else refers to yet (a submit): on PostgreSQL it then
        commits on a lane of its own, beside the other writes (ends, assignments), so that a client
        waits for one commit, not also for the one under way before its own."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        lane = 1 if new_rows and len(self._queues) > 1 else 0
        self._queues[lane].put_nowait((fn, future, heavy))
        try:
            return await future
        except IntegrityError as exc:
            raise DuplicateKey(" ".join(str(exc.orig).split())) from None

    async def _write_loop(self, lane: int) -> None:
        queue = self._queues[lane]
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < 1000:
                batch.append(queue.get_nowait())
            await self._commit(batch, lane)

    async def _commit(self, batch: list[Queued], lane: int = 0) -> None:
        fns = [fn for fn, _, _ in batch]
        heavy = any(heavy for _, _, heavy in batch)
        try:
            if self._async is not None and len(fns) == 1 and hasattr(fns[0], "one_statement"):
                results = [await self._autocommit(fns[0], lane)]
            else:
                results = await self._in_transaction(lambda conn: [fn(conn) for fn in fns], heavy, lane)
        except Exception as exc:
            if _unavailable(exc):  # no use running each alone: every one of them fails the same way
                error = self.translate(exc)
                for _, future, _ in batch:
                    if not future.done():
                        future.set_exception(error)
                return
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            # One write failed: run each alone so only the faulty one sees its error.
            for item in batch:
                await self._commit([item], lane)
            return
        if self._checkpointer is not None:
            self._checkpointer.nudge()
        for (_, future, _), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def close(self) -> None:
        while any(not queue.empty() for queue in self._queues) and self._writer_tasks:
            await asyncio.sleep(0.01)
        for task in self._writer_tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._writer_tasks = []
        for executor in (self._thread, self._heavy, self._scans):
            if executor is not None:
                executor.shutdown(wait=True)
        if self._checkpointer is not None:
            self._checkpointer.stop()
        for conn in (self._writer_conn, self._reader_conn):
            if conn is not None:
                conn.close()
        self._writer_conn = self._reader_conn = None
        for aconn in self._async_conns:
            if aconn is not None:
                with contextlib.suppress(Exception):
                    await aconn.close()
        self._async_conns, self._drivers = [None, None], [None, None]
        for engine in (self._sync_writer, self._sync_reader):
            if engine is not None:
                engine.dispose()
        if self._async is not None:
            await self._async.dispose()


def _alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


MIGRATION_LOCK = 0x68697666  # PostgreSQL: nodes starting at once migrate one after the other


def _upgrade(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":  # held until this transaction ends
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    command.upgrade(_alembic_config(conn), "head")


def _is_current(conn: Connection) -> bool:
    heads = set(ScriptDirectory.from_config(_alembic_config(conn)).get_heads())
    return set(MigrationContext.configure(conn).get_current_heads()) == heads
