"""Which database errors are "unavailable" (503, try again) rather than bugs (500): hardening item 16,
a SQLite WAL truncated under load answered 500."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError

from hived.store.db import Database, DatabaseUnavailable


@pytest.mark.parametrize(
    ("exc", "unavailable"),
    [
        (DatabaseError("SELECT 1", {}, sqlite3.DatabaseError("database disk image is malformed")), True),
        (DatabaseError("SELECT 1", {}, sqlite3.DatabaseError("file is not a database")), True),
        (OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error")), True),
        (IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")), False),
        (ValueError("a bug"), False),
    ],
)
def test_item_16_a_damaged_sqlite_file_is_503_not_500(
    tmp_path: object, exc: BaseException, unavailable: bool
) -> None:
    db = Database(f"sqlite:///{tmp_path}/hive.db")
    translated = db.translate(exc)
    assert isinstance(translated, DatabaseUnavailable) == unavailable
    if unavailable:
        assert translated.status_code == 503 and "unavailable" in str(translated)
