"""Fixtures of the in-process core tests: one migrated SQLite template per session, copied per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.inprocess import Core, core, migrated_database


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "hive.db"
    asyncio.run(migrated_database(path))
    return path


@pytest.fixture
async def hive(template_db: Path, tmp_path: Path) -> AsyncIterator[Core]:
    """The dispatcher, agent manager and workflow engine in this process, on a FakeClock."""
    async with core(template_db, tmp_path) as made:
        yield made
