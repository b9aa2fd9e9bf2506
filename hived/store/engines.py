"""The SQLAlchemy engines hived's Database runs on: SQLite's (pragmas, `BEGIN IMMEDIATE` for the
writer) and PostgreSQL's (asyncpg, with the session settings that keep a silent peer from holding
locks)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hived.store import jsontext

T = TypeVar("T")

# PostgreSQL sessions: the server notices a peer gone silent (its network cut) within ~25 s.
KEEPALIVE = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3"}


def postgres_engine(url: URL, idle_in_transaction: float) -> AsyncEngine:
    """A session left `idle_in_transaction` seconds inside a transaction (its client cut off
    mid-transaction) is ended by the server, which frees the rows it locked."""
    settings = {**KEEPALIVE, "idle_in_transaction_session_timeout": str(int(idle_in_transaction * 1000))}
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        # No ping at each checkout (a round trip before every read: a quarter to a third of hived's
        # CPU for a `GET /tasks/{id}`): a read that meets a dead connection is read again on a
        # fresh one (`pooled_read`), and the writers keep theirs (hived.store.db).
        pool_pre_ping=False,
        connect_args={"server_settings": settings},
        json_serializer=jsontext.dumps,
        json_deserializer=jsontext.loads,
    )


async def pooled_read(engine: AsyncEngine, fn: Callable[[Connection], T]) -> T:
    """`fn` on a connection of `engine`'s pool; once more on a new one if the pooled connection was
    dead (the server restarted, or cut idle sessions): SQLAlchemy then renews the whole pool."""
    try:
        async with engine.connect() as aconn:
            return await aconn.run_sync(fn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    async with engine.connect() as aconn:
        return await aconn.run_sync(fn)


# The sqlite3 module "adapts" every parameter that is not exactly an int, float or str: it looks the
# type up among the registered adapters, then asks the protocol and the value for `__adapt__` and
# `__conform__`, each missing attribute an AttributeError made and cleared (a third of the cost of
# binding a row full of NULLs). An adapter registered for None (dict.get: one C call that gives None
# back) ends the search at its first lookup; None is bound as NULL all the same.
sqlite3.register_adapter(type(None), {}.get)


def sqlite_synchronous() -> str:
    synchronous = os.environ.get("HIVE_SQLITE_SYNCHRONOUS", "NORMAL").upper()
    return synchronous if synchronous in ("NORMAL", "FULL") else "NORMAL"


def sqlite_engine(url: str, writer: bool) -> Engine:
    synchronous = sqlite_synchronous()
    engine = create_engine(
        url,
        pool_size=1 if writer else 4,
        max_overflow=0 if writer else 4,
        pool_reset_on_return=None,
        # The writer's one connection is used by one thing at a time (the write loop awaits each
        # batch), on the loop or, for a heavy batch, in a thread.
        connect_args={"check_same_thread": False} if writer else {},
        json_serializer=jsontext.dumps,
        json_deserializer=jsontext.loads,
    )

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves; readers run in autocommit
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=5000")
        if writer and synchronous == "NORMAL":
            cur.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's thread does them
        cur.close()

    if writer:

        @event.listens_for(engine, "begin")
        def on_begin(conn: Connection) -> None:
            raw: Any = conn.connection.driver_connection
            if not raw.in_transaction:  # (else a write transaction begun on it, which this joins)
                raw.execute("BEGIN IMMEDIATE")

    return engine


def sqlite_transaction(conn: Connection, fn: Callable[[Connection], T]) -> T:
    """`fn` in one write transaction of SQLite, begun and ended on the DBAPI connection: a tenth of a
    small write's instructions went to SQLAlchemy's transaction objects. A statement that `fn` sends
    through SQLAlchemy joins it (the writer's `begin` event sees it open), and is committed with it.
    Errors come out as SQLAlchemy raises them (DBAPIError: OperationalError for a locked file)."""
    raw: Any = conn.connection.driver_connection
    try:
        raw.execute("BEGIN IMMEDIATE")
        result = fn(conn)
        if conn.in_transaction():
            conn.commit()
        else:
            raw.commit()
        return result
    except BaseException as exc:
        if conn.in_transaction():
            conn.rollback()
        if raw.in_transaction:
            raw.rollback()
        if isinstance(exc, sqlite3.Error):
            raise DBAPIError.instance(None, None, exc, sqlite3.Error, dialect=conn.dialect) from exc
        raise
