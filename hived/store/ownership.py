"""One hived per database. Two daemons dispatching from the same tables would hand out the same
task twice and each reconcile away the other's agents; so hived owns its database while it runs.

SQLite: an exclusive `flock` on the database file's inode (so a symlink or a hard link to it is the
same database) and on `<its real path>.lock` (the holder's pid and host are written in it).
PostgreSQL: a session advisory lock held on a connection of its own, with TCP keepalives set so
that the server frees it within about 30 s of the holder vanishing from the network. Both are freed
by the kernel or the server the moment the holder dies, `kill -9` included, and neither is inherited
by agent processes (file descriptors are close-on-exec).

A second hived fails to start with a message naming the holder, or, with `--standby`, waits until
the lock is free and then starts (a warm standby on another host, for PostgreSQL). The owner checks
its PostgreSQL lock every `CHECK_INTERVAL`; if the connection broke it takes the lock again, and if
another hived has it meanwhile, it stops at once (`on_lost`): it must not write after losing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import zlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from hived.store.db import DatabaseError
from hived.store.engines import KEEPALIVE
from hived.store.files import private_file

log = logging.getLogger("hived.store")

LOCK_KEY = 0x68697665  # "hive": the advisory lock's key, per database
NODE_KEY = 0x6E6F6465  # "node": with a node name's crc32, a node's key (several nodes per database)
CHECK_INTERVAL = 2.0
BUSY_GRACE = 3.0  # a holder that was just killed needs a moment to be noticed by the server


class DatabaseBusy(DatabaseError):
    """Another hived owns this database."""


def me() -> str:
    return f"hived pid {os.getpid()} on {socket.gethostname()}"


class Ownership:
    def __init__(self, url: str, described: str, node: str = "") -> None:
        self.url = make_url(url)
        self.described = described
        self.node = node  # PostgreSQL nodes (hived.nodes): one hived per node name, not per database
        self.key = NODE_KEY << 32 | zlib.crc32(node.encode()) if node else LOCK_KEY
        self.dialect = self.url.get_backend_name()
        self._fd: int | None = None  # the lock file, `<database>.lock`
        self._db_fd: int | None = None  # the database file, flocked
        self._conn: Any = None  # asyncpg.Connection
        self._watch: asyncio.Task[None] | None = None
        self.owned = False

    async def acquire(self, standby: bool = False, poll: float = 1.0) -> None:
        """Take the lock, or raise DatabaseBusy naming the holder; `standby`: wait for it. Once held,
        a second call (hived's server, then the orchestrator it starts) does nothing."""
        if self.owned:
            return
        grace = BUSY_GRACE if self.dialect == "postgresql" else 0.0  # the kernel frees a flock at once
        deadline = asyncio.get_running_loop().time() + grace
        announced = False
        while True:
            try:
                holder = await self._try()
            except (OSError, TimeoutError, *self._connect_errors()) as exc:
                said = " ".join(str(exc).split()) or type(exc).__name__
                if not standby:  # (a wrong URL, a database not created: say so, no traceback)
                    raise DatabaseError(f"database {self.described} cannot be reached: {said}") from None
                log.warning("standby: database %s cannot be reached (%s); trying again", self.described, said)
                await asyncio.sleep(poll)
                continue
            if holder is None:
                self.owned = True
                if announced:
                    log.info("standby over: this hived now owns %s", self.described)
                return
            if not standby and asyncio.get_running_loop().time() >= deadline and self.node:
                raise DatabaseBusy(
                    f"database {self.described} is in use by another hived as node {self.node!r} "
                    f"({holder}); give this one another node name (--node NAME) to run both, or "
                    "--standby to wait for it"
                )
            if not standby and asyncio.get_running_loop().time() >= deadline:
                raise DatabaseBusy(
                    f"database {self.described} is in use by another hived ({holder}); "
                    "one hived per database (hived --standby waits for it)"
                )
            if standby and not announced:
                log.info("standby: database %s is owned by %s; waiting for it", self.described, holder)
                announced = True
            await asyncio.sleep(poll if standby else 0.1)

    def watch(self, on_lost: Callable[[str], None]) -> None:
        """PostgreSQL: check the lock now and then; `on_lost(reason)` when another hived took it."""
        if self.dialect == "postgresql" and self._watch is None:
            self._watch = asyncio.create_task(self._watch_loop(on_lost), name="db-ownership")

    async def release(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
            self._conn = None
        for fd in (self._fd, self._db_fd):  # frees the flocks (SQLite has closed the database)
            if fd is not None:
                os.close(fd)
        self._fd = self._db_fd = None
        self.owned = False

    def _connect_errors(self) -> tuple[type[Exception], ...]:
        if self.dialect != "postgresql":
            return ()
        import asyncpg

        return (asyncpg.PostgresError, asyncpg.InterfaceError)

    # --- the two kinds of lock --------------------------------------------------------------------

    async def _try(self) -> str | None:
        """None when the lock is ours now; else who holds it."""
        if self.dialect == "sqlite":
            return self._try_file()
        return await self._try_advisory()

    def _try_file(self) -> str | None:
        """Lock the database file itself (an `flock` on its inode, reached through any name: a
        symlink, a hard link elsewhere), then `<its real path>.lock`, which holds the owner's pid
        and host for operators and is what earlier versions locked (so the two exclude each other
        during an upgrade). The database's descriptor stays open while hived runs: closing any descriptor of
        the file would drop SQLite's POSIX locks on it in this process."""
        if self._fd is not None or not self.url.database or self.url.database == ":memory:":
            return None
        if self._db_fd is None:
            self._db_fd = _open_private(self.url.database)
        try:
            fcntl.flock(self._db_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _flock_holder(self._db_fd, os.path.realpath(self.url.database) + ".lock")
        info = os.path.realpath(self.url.database) + ".lock"
        fd = _open_private(info)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            fcntl.flock(self._db_fd, fcntl.LOCK_UN)
            return holder
        os.ftruncate(fd, 0)
        os.pwrite(fd, (me() + "\n").encode(), 0)
        self._fd = fd
        return None

    async def _try_advisory(self) -> str | None:
        import asyncpg

        if self._conn is None or self._conn.is_closed():
            dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._conn = await asyncpg.connect(
                dsn, timeout=10, server_settings={"application_name": me()[:63], **KEEPALIVE}
            )
        if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key):
            return None
        row = await self._conn.fetchrow(
            "SELECT a.application_name, a.client_addr FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = $2 AND l.objid = $1 AND l.database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())",
            self.key & 0xFFFFFFFF,
            self.key >> 32,
        )
        if row is None:
            return "unknown (it was just freed)"
        return f"{row['application_name'] or 'a client'} from {row['client_addr'] or 'a local socket'}"

    async def _holds_advisory(self) -> bool:
        row = await self._conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = $1 "
            "AND classid = $2 AND pid = pg_backend_pid()",
            self.key & 0xFFFFFFFF,
            self.key >> 32,
        )
        return bool(row)

    async def _watch_loop(self, on_lost: Callable[[str], None]) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            try:
                if self._conn is not None and not self._conn.is_closed():
                    if await asyncio.wait_for(self._holds_advisory(), CHECK_INTERVAL * 2):
                        continue
                holder = await asyncio.wait_for(self._try_advisory(), 15)
            except Exception as exc:
                # The server is unreachable: so are our writes. Keep trying; never write unchecked.
                log.warning("database ownership: cannot check the lock on %s: %s", self.described, exc)
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        self._conn.terminate()
                    self._conn = None
                continue
            if holder is not None:
                on_lost(f"database {self.described} was taken over by {holder}")
                return
            log.warning("database ownership: the lock connection was lost and is held again")


def _open_private(path: str) -> int:
    """Open (create) a file of the database 0600; tighten it if it was more open."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise DatabaseError(f"cannot open {path}: {exc.strerror or exc}") from None
    private_file(fd, path)
    return fd


def _read_holder(fd: int) -> str:
    return os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"


def _flock_holder(fd: int, info: str) -> str:
    """Who holds the flock on this file: the pid from /proc/locks (Linux), named as the owner's lock
    file names it when that file is the same owner's; else what the lock file says."""
    st = os.fstat(fd)
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pid = None
    with contextlib.suppress(OSError), open("/proc/locks") as locks:
        for line in locks:
            parts = line.split()
            if "FLOCK" in parts and "->" not in parts:
                at = parts.index("FLOCK")
                if len(parts) > at + 4 and parts[at + 4] == wanted:
                    pid = parts[at + 3]
                    break
    said = ""
    with contextlib.suppress(OSError), open(info) as file:
        said = file.read(200).strip()
    if pid is None:
        return said or "unknown"
    if said.startswith(f"hived pid {pid} "):
        return said
    return f"hived pid {pid} on {socket.gethostname()}"
