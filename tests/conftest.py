"""Fixtures: a real hived per test (SQLite by default, PostgreSQL where asked), and databases."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.helpers import Hived

PG_URL = os.environ.get("HIVE_TEST_PG_URL")  # postgresql+asyncpg://user:pw@host:port/db
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_admin(statement: str) -> None:
    import asyncpg

    assert PG_URL is not None
    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def require_pg() -> str:
    if not PG_URL:
        if IN_CI:
            pytest.fail("HIVE_TEST_PG_URL is not set but CI=true: the PostgreSQL tests must run in CI")
        pytest.skip("PostgreSQL tests need HIVE_TEST_PG_URL (postgresql+asyncpg://...); .ci/run sets it")
    return PG_URL


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    base = require_pg()
    name = f"hive_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """Each storage test runs on the embedded SQLite file and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/hive.db"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def hived_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Hived]]:
    """Start real hived daemons; every one (and its agents) is stopped after the test."""
    started: list[Hived] = []

    def make(
        db_url: str | None = None, state_dir: os.PathLike[str] | None = None, start: bool = True, **kw: object
    ) -> Hived:
        # Short paths: a Unix socket path must stay under ~100 bytes.
        state = state_dir or tmp_path_factory.mktemp("hive")
        daemon = Hived(state, db_url=db_url, **kw)  # type: ignore[arg-type]
        started.append(daemon)
        return daemon.start() if start else daemon

    yield make
    for daemon in started:
        daemon.cleanup()


@pytest.fixture
def hived(hived_factory: Callable[..., Hived]) -> Hived:
    """One real hived on the embedded SQLite default, in a temporary state dir."""
    return hived_factory()
