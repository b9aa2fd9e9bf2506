"""hived's files are its user's alone: the state dir is 0700 and the SQLite database, its WAL, its
shared-memory index and its lock file are 0600, whatever the umask and whatever an older hived or an
operator left. The WAL holds recent rows in clear (tokens' hashes, payloads, secret env of agents).

The database file is created 0600 before SQLite opens it: SQLite creates `-wal` and `-shm` with the
database file's own mode, so they are 0600 too. Files more open than that are tightened (and said
so in the log); a state dir that is another user's and open to others is refused.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("hived.store")

SQLITE_FILES = ("", "-wal", "-shm", "-journal", ".lock")


class UnsafeStateDir(RuntimeError):
    """The state dir cannot be made private; the message says why and what to do."""


def private_dir(path: Path) -> None:
    """Create `path` 0700, or tighten it to 0700 if it is hived's user's and open to others."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077:
        return
    if info.st_uid == os.getuid():
        os.chmod(path, 0o700)
        log.warning("state dir %s was mode %04o, open to other users: now 0700", path, mode)
    elif mode & 0o022:
        raise UnsafeStateDir(
            f"state dir {path} (mode {mode:04o}) is writable by other users and not this user's: "
            "give hived a directory of its own (chmod 700, owned by hived's user)"
        )


def private_file(fd: int, path: str) -> None:
    """Tighten an open file of hived's user to 0600."""
    info = os.fstat(fd)
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077 and info.st_uid == os.getuid():
        os.fchmod(fd, 0o600)
        log.warning("%s was mode %04o, readable by other users: now 0600", path, mode)


def private_sqlite_files(database: str) -> None:
    """Tighten the database file and its companions that exist to 0600. Call it before SQLite opens
    the database: closing any descriptor of a file drops the process's POSIX locks on it (SQLite's)."""
    for suffix in SQLITE_FILES:
        path = database + suffix
        try:
            # the database itself may be a symlink; SQLite opens its companions with O_NOFOLLOW
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_NOFOLLOW if suffix else 0))
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                continue
            raise
        try:
            private_file(fd, path)
        finally:
            os.close(fd)
