"""WAL checkpoints of the SQLite file, off the event loop.

Under `synchronous=NORMAL` a commit only appends to the WAL (no fsync), so hived commits on its event
loop, where a thread hop would cost more than the commit. What does wait on the disk is the
checkpoint (copying the WAL into the database file, with an fsync), which SQLite would otherwise run
inside whichever commit crossed 1,000 pages. So the writer turns that off (`wal_autocheckpoint=0`)
and this thread checkpoints instead, on its own connection: PASSIVE, so it never blocks a writer or a
reader, every `every` seconds or sooner when `nudge()` says many commits went by.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("hived.store")

EVERY = 1.0  # seconds between checkpoints when hived is idle or slow
NUDGE_AFTER = 500  # commits after which the checkpoint runs at once


class Checkpointer:
    def __init__(self, path: str, every: float = EVERY) -> None:
        self.path = path
        self.every = every
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._commits = 0
        self._thread: threading.Thread | None = None
        self.checkpoints = 0
        self.last: tuple[int, int] = (0, 0)  # frames in the WAL, and copied, at the last checkpoint

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hive-db-checkpoint", daemon=True)
            self._thread.start()

    def nudge(self) -> None:
        """A commit went by (called on the event loop; cheap)."""
        self._commits += 1
        if self._commits >= NUDGE_AFTER:
            self._commits = 0
            self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            while not self._stop.is_set():
                self._wake.wait(self.every)
                self._wake.clear()
                self.checkpoint(conn)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            _busy, log_frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.last = (log_frames, copied)
            self.checkpoints += 1
        except sqlite3.Error as exc:  # the next one tries again; commits go on meanwhile
            log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
