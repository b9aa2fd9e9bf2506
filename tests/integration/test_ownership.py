"""One hived per database: a second one is refused with the holder named, or with --standby waits and
takes over when the owner dies (adopting its agents, losing no task); a PostgreSQL owner that loses
its lock to another stops at once. SQLite and PostgreSQL, real daemons, kill -9."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hived.store.ownership import Ownership
from tests.helpers import Hived, wait_for


def second_hived(state: Path, db: str, *extra: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hived.main", "--state-dir", str(state), "--db", db, *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_second_hived_on_the_same_database_is_refused(
    hived_factory: Any, db_url: str, tmp_path: Path
) -> None:
    owner: Hived = hived_factory(db_url=db_url)
    pid = owner.proc.pid  # type: ignore[union-attr]
    other = second_hived(tmp_path / "other", db_url)
    assert other.returncode == 1
    assert "is in use by another hived" in other.stderr and f"hived pid {pid} on" in other.stderr
    assert "Traceback" not in other.stderr
    assert not (tmp_path / "other" / "hived.sock").exists()
    assert owner.api("GET", "/readyz")  # the owner is untouched


def test_standby_takes_over_after_kill_9_and_adopts_the_agents(
    hived_factory: Any, db_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "shared"
    owner: Hived = hived_factory(db_url=db_url, state_dir=state)
    owner.spawn("worker", {"python": "hivectl.agent.builtin:act"}, capabilities=["act"])
    [agent_pid] = owner.agent_pids()
    task = owner.submit("act", requires=["act"], payload={"sleep": 3, "result": {"done": True}})
    wait_for(lambda: owner.task(task["id"])["status"] == "running", what="task running")

    # The standby: same socket, same database; it waits without touching either.
    standby = Hived(state, db_url=db_url, extra_args=["--standby"])
    standby.log_path = tmp_path / "standby.log"
    with open(standby.log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hived.main", "--socket", str(standby.socket), "--standby"]
            + ["--state-dir", str(state), "--stop-grace", "5", "--db", db_url],
            env=standby.env,
            stdout=log,
            stderr=log,
        )
    standby.proc = proc
    try:
        wait_for(lambda: "standby: database" in standby.log(), what="standby waiting")
        assert proc.poll() is None and owner.api("GET", "/healthz")

        owner.kill9()
        wait_for(standby._healthy, 30, interval=0.05, what="standby serving")
        assert "standby over" in standby.log()
        done = standby.wait_task(task["id"])
        assert done["status"] == "completed" and done["result"] == {"done": True}
        assert done["attempts"] == 1  # the attempt in flight finished; nothing was run twice
        assert standby.agent_pids() == [agent_pid]  # adopted, not respawned
    finally:
        standby.stop()
        standby.client.close()


@pytest.mark.pg
def test_a_postgres_owner_that_loses_its_lock_stops(hived_factory: Any, pg_database: str) -> None:
    owner: Hived = hived_factory(db_url=pg_database)
    pid = owner.proc.pid  # type: ignore[union-attr]
    dsn = pg_database.replace("postgresql+asyncpg://", "postgresql://")
    node = socket.gethostname().split(".")[0].lower()  # hived's default node name (hived.config)
    key = Ownership(pg_database, "", node=node).key  # the node's lock on PostgreSQL

    async def take_over() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            killed = await conn.fetchval(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                f"hived pid {pid} on {socket.gethostname()}"[:63],
            )
            assert killed
            got = False
            for _ in range(100):  # the terminated backend frees the lock in a moment
                if got := await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                    break
                await asyncio.sleep(0.02)
            assert got
            # Hold it until the old owner has given up.
            await asyncio.get_running_loop().run_in_executor(None, lambda: owner.proc.wait(30))  # type: ignore[union-attr]
        finally:
            await conn.close()

    asyncio.run(take_over())
    assert owner.proc.returncode == 1  # type: ignore[union-attr]
    assert "hived stopping at once: database" in owner.log() and "taken over by" in owner.log()


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_item_14_the_sqlite_lock_follows_the_file_not_its_name(
    hived_factory: Any, tmp_path: Path, link: str
) -> None:
    """Two names of one database file (a symlink, a hard link elsewhere) are one database: the
    second hived is refused, naming the owner."""
    state = tmp_path / "owner"
    owner: Hived = hived_factory(db_url=f"sqlite:///{state}/hive.db", state_dir=state)
    pid = owner.proc.pid  # type: ignore[union-attr]
    other = tmp_path / "elsewhere"
    other.mkdir()
    if link == "symlink":
        (other / "alias.db").symlink_to(state / "hive.db")
    else:
        os.link(state / "hive.db", other / "alias.db")
    refused = second_hived(tmp_path / "other", f"sqlite:///{other}/alias.db", timeout=20)
    assert refused.returncode == 1, refused.stderr
    assert "is in use by another hived" in refused.stderr and f"hived pid {pid} on" in refused.stderr
    assert owner.api("GET", "/readyz")


def start_standby(state: Path, db: str, socket_path: Path, log_path: Path) -> Hived:
    standby = Hived(state, db_url=db)
    standby.socket, standby.log_path = socket_path, log_path
    with open(log_path, "ab") as log:
        standby.proc = subprocess.Popen(
            [sys.executable, "-m", "hived.main", "--socket", str(socket_path), "--standby"]
            + ["--state-dir", str(state), "--stop-grace", "5", "--db", db],
            env=standby.env,
            stdout=log,
            stderr=log,
        )
    return standby


@pytest.mark.pg
def test_item_15_a_postgres_standby_outlives_a_blip_of_the_owners_lock(
    hived_factory: Any, pg_database: str, tmp_path: Path
) -> None:
    state = tmp_path / "shared"
    owner: Hived = hived_factory(db_url=pg_database, state_dir=state)
    standby = start_standby(state, pg_database, owner.socket, tmp_path / "standby.log")
    dsn = pg_database.replace("postgresql+asyncpg://", "postgresql://")
    owner_app = f"hived pid {owner.proc.pid} on {socket.gethostname()}"[:63]  # type: ignore[union-attr]

    async def blip() -> bool:
        conn = await asyncpg.connect(dsn)
        try:
            return bool(
                await conn.fetchval(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                    owner_app,
                )
            )
        finally:
            await conn.close()

    try:
        wait_for(lambda: "standby: database" in standby.log(), what="standby waiting")
        # Blip the owner's lock connection until the standby is the one that gets the lock (the
        # owner re-checks every 2 s, the standby polls every 1 s: it mostly wins the race).
        for _ in range(10):
            taken = owner.log().count("held again")
            wait_for(lambda: asyncio.run(blip()), what="the owner's lock connection")
            outcome = wait_for(
                lambda taken=taken: (
                    (standby.proc.poll() is not None and "exited")  # type: ignore[union-attr]
                    or ("waiting again" in standby.log() and "standby backed off")
                    or (owner.proc.poll() is not None and "owner gone")  # type: ignore[union-attr]
                    or (owner.log().count("held again") > taken and "owner took it back")
                ),
                30,
                what="the blip's outcome",
            )
            if outcome != "owner took it back":
                break
        assert outcome != "exited", f"the standby exited:\n{standby.log()}"
        assert standby.proc.poll() is None  # type: ignore[union-attr]
        # Still a working standby: when the owner really goes, it takes over.
        if owner.proc.poll() is None:  # type: ignore[union-attr]
            wait_for(lambda: owner.api("GET", "/readyz"), what="the owner serving")
            owner.kill9()
        wait_for(standby._healthy, 60, interval=0.05, what="standby serving")
    finally:
        standby.stop()
        standby.client.close()


def test_a_postgresql_url_that_cannot_be_reached_is_a_clear_error(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    from tests.conftest import require_pg

    url = make_url(require_pg())
    missing = url.set(database="hive_no_such_database").render_as_string(hide_password=False)
    refused = url.set(host="127.0.0.1", port=1).render_as_string(hide_password=False)  # nothing listens
    for db, said in ((missing, 'database "hive_no_such_database" does not exist'), (refused, "refused")):
        result = second_hived(tmp_path / "state", db)
        assert result.returncode == 1, result.stderr
        assert "cannot be reached" in result.stderr and said in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "state" / "hived.sock").exists()
