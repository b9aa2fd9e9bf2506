"""hived's SQLite write transactions, begun and ended on the DBAPI connection (hived.store.engines):
what they write is committed together, whether a statement went through SQLAlchemy or not; a failure
leaves nothing written and no transaction open; a locked file is SQLAlchemy's OperationalError (503),
as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from hived.store.engines import sqlite_engine, sqlite_transaction


@pytest.fixture
def writer(tmp_path: Path) -> Any:
    engine = sqlite_engine(f"sqlite:///{tmp_path / 'x.db'}", writer=True)
    conn = engine.connect()
    conn.connection.driver_connection.execute("CREATE TABLE t (n INTEGER)")  # type: ignore[union-attr]
    yield conn
    conn.close()
    engine.dispose()


def rows(path: Path) -> list[int]:
    with sqlite3.connect(path / "x.db") as other:
        return [n for (n,) in other.execute("SELECT n FROM t ORDER BY n")]


def test_raw_and_sqlalchemy_statements_commit_together(writer: Connection, tmp_path: Path) -> None:
    def both(conn: Connection) -> str:
        conn.connection.driver_connection.execute("INSERT INTO t VALUES (1)")  # type: ignore[union-attr]
        conn.execute(text("INSERT INTO t VALUES (2)"))  # (SQLAlchemy's autobegin joins the open one)
        return "done"

    assert sqlite_transaction(writer, both) == "done"
    assert rows(tmp_path) == [1, 2]
    assert sqlite_transaction(writer, lambda c: c.exec_driver_sql("INSERT INTO t VALUES (3)")) is not None
    assert rows(tmp_path) == [1, 2, 3] and not writer.in_transaction()


@pytest.mark.parametrize("through_sqlalchemy", [False, True])
def test_a_failure_writes_nothing_and_leaves_no_transaction(
    writer: Connection, tmp_path: Path, through_sqlalchemy: bool
) -> None:
    def half(conn: Connection) -> None:
        if through_sqlalchemy:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        else:
            conn.connection.driver_connection.execute("INSERT INTO t VALUES (1)")  # type: ignore[union-attr]
        raise ValueError("a bug half-way")

    with pytest.raises(ValueError, match="half-way"):
        sqlite_transaction(writer, half)
    raw: Any = writer.connection.driver_connection
    assert rows(tmp_path) == [] and not raw.in_transaction and not writer.in_transaction()
    sqlite_transaction(writer, lambda c: c.exec_driver_sql("INSERT INTO t VALUES (4)"))
    assert rows(tmp_path) == [4]


def test_a_locked_file_is_sqlalchemys_operational_error(writer: Connection, tmp_path: Path) -> None:
    raw: Any = writer.connection.driver_connection
    raw.execute("PRAGMA busy_timeout=0")
    holder = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the file
    try:
        with pytest.raises(OperationalError, match="locked"):
            sqlite_transaction(writer, lambda c: c.exec_driver_sql("INSERT INTO t VALUES (1)"))
        assert not raw.in_transaction
    finally:
        holder.rollback()
        holder.close()
    sqlite_transaction(writer, lambda c: c.exec_driver_sql("INSERT INTO t VALUES (5)"))
    assert rows(tmp_path) == [5]
