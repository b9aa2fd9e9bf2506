"""The hot path's statements, run on the DBAPI cursor as SQLAlchemy would run them, without its
per-execution machinery (a third of a small write's time on SQLite).

`Prepared(statement).run(conn, rows)` compiles the statement once per dialect and set of keys (the
same SQL text SQLAlchemy sends), puts each row's values through the same bind processors (the
dialect's implementation of each column type: JSON, the UTC datetimes), fills the statement's
constants and the columns' scalar defaults as SQLAlchemy does, and calls the cursor's `execute` or
`executemany` in the connection's current transaction. A DBAPI error is raised as SQLAlchemy
raises it (IntegrityError, OperationalError, ...), so callers see no difference. A statement whose
compiled form needs more than that (a callable default, a RETURNING) goes through `conn.execute`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None
NUMBERED = re.compile(r"\$(\d+)")  # PostgreSQL's parameters in SQLAlchemy's SQL: $1::VARCHAR
Plan = tuple[str, list[tuple[str | None, Any, Processor]]]  # SQL; per position: key or constant


class Prepared:
    def __init__(self, statement: UpdateBase) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, tuple[str, ...]], Plan | None] = {}

    def run(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
        """Execute for every row (all with the same keys, as for `conn.execute`); the rows matched."""
        if not rows:
            return 0
        found = self.plan_for(conn.dialect, tuple(rows[0]))
        if found is None:
            return int(conn.execute(self.statement, list(rows)).rowcount or 0)
        sql, slots = found
        params = [
            tuple(
                [
                    (row[key] if proc is None else proc(row[key])) if key is not None else constant
                    for key, constant, proc in slots
                ]
            )
            for row in rows
        ]
        cursor = conn.connection.cursor()
        try:
            if len(params) == 1:
                cursor.execute(sql, params[0])
            else:
                cursor.executemany(sql, params)
            return int(cursor.rowcount or 0)
        except conn.dialect.loaded_dbapi.Error as exc:
            gone = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
            error = DBAPIError.instance(
                sql,
                params,
                exc,
                conn.dialect.loaded_dbapi.Error,
                connection_invalidated=gone,
                dialect=conn.dialect,
            )
            if gone:
                conn.invalidate(error)
            raise error from exc
        finally:
            cursor.close()

    def plan_for(self, dialect: Dialect, keys: tuple[str, ...]) -> Plan | None:
        cache_key = (dialect.name, keys)
        if cache_key not in self._plans:
            self._plans[cache_key] = plan(self.statement, dialect, keys)
        return self._plans[cache_key]


def plan(statement: UpdateBase, dialect: Dialect, keys: tuple[str, ...]) -> Plan | None:
    """The SQL text and, in order, where each parameter comes from; None when `conn.execute` must do
    it (a default that is not a constant, a RETURNING, named parameters)."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if compiled.positiontup is None or compiled.effective_returning or compiled.postfetch_lastrowid:
        return None
    defaults: dict[str, Any] = {}
    for column in compiled.insert_prefetch + compiled.update_prefetch:
        default = column.default
        if default is None or not default.is_scalar:
            return None
        defaults[column.key] = default.arg
    slots: list[tuple[str | None, Any, Processor]] = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if name in keys:
            slots.append((name, None, proc))
        else:
            value = defaults[name] if name in defaults else bind.effective_value
            slots.append((None, value if proc is None else proc(value), None))
    return compiled.string, slots


@functools.lru_cache(maxsize=256)
def renumbered(sql: str, offset: int) -> str:
    """`sql` with its parameters $1... moved up by `offset` (the same few statements every time)."""
    return NUMBERED.sub(lambda m: f"${int(m.group(1)) + offset}", sql) if offset else sql


class Statements:
    """A write made of prepared INSERTs (a task and its first attempt), callable on a Connection
    like any write. On PostgreSQL, alone in its batch, the writer runs it as one statement in
    autocommit (`one_statement`): `WITH s1 AS (INSERT ...) INSERT ...`, atomic as a transaction,
    in one round trip where BEGIN, each INSERT and COMMIT took one each."""

    def __init__(self, *parts: tuple[Prepared, dict[str, Any]]) -> None:
        self.parts = parts

    def __call__(self, conn: Connection) -> None:
        for prepared, row in self.parts:
            prepared.run(conn, [row])

    def one_statement(self, dialect: Dialect) -> tuple[str, list[Any]] | None:
        """The SQL and its arguments ($1...), or None when a part cannot be one (SQLAlchemy must
        run it)."""
        texts: list[str] = []
        args: list[Any] = []
        for prepared, row in self.parts:
            found = prepared.plan_for(dialect, tuple(row))
            if found is None or not found[0].startswith("INSERT "):
                return None
            sql, slots = found
            offset = len(args)
            texts.append(renumbered(sql, offset))
            args += [(row[k] if p is None else p(row[k])) if k is not None else c for k, c, p in slots]
        *ctes, last = texts
        if not ctes:
            return last, args
        return "WITH " + ", ".join(f"s{i} AS ({text})" for i, text in enumerate(ctes)) + " " + last, args


class OneStatement:
    """A write that can be one statement whose rows are its result (the ends of attempts,
    hived.store.ends): `fn` is the same write for a transaction, batched with others; alone in the
    writer's batch on PostgreSQL, the writer runs `sql` in autocommit, one round trip where BEGIN,
    the statement and COMMIT took three, and returns `read` of its rows."""

    def __init__(
        self, fn: Callable[[Connection], Any], sql: str, args: Sequence[Any], read: Callable[[Any], Any]
    ) -> None:
        self.fn, self.sql, self.args, self.read = fn, sql, args, read

    def __call__(self, conn: Connection) -> Any:
        return self.fn(conn)

    def one_statement(self, dialect: Dialect) -> tuple[str, list[Any]] | None:
        return (self.sql, list(self.args)) if dialect.name == "postgresql" else None
