"""Daemon threads for sync python handlers, reused from one call to the next.

A call takes an idle thread or starts one, so no call ever waits for a slot: one abandoned at its
timeout (a thread cannot be stopped) keeps its thread and the next attempt gets another. The threads
are daemons, so a handler that never returns does not keep the agent from exiting. A thread idle for
`idle_timeout` seconds ends. Starting a thread per call cost more than a no-op handler.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

IDLE_TIMEOUT = 60.0


class DaemonThreads:
    def __init__(self, idle_timeout: float = IDLE_TIMEOUT, name: str = "handler") -> None:
        self.idle_timeout = idle_timeout
        self.name = name
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job that no call has claimed yet
        self.started = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            claimed = self._idle > 0
            if claimed:
                self._idle -= 1
            else:
                self.started += 1
        if claimed:
            self._jobs.put(job)
        else:
            threading.Thread(target=self._work, args=(job,), name=self.name, daemon=True).start()

    def _work(self, job: Callable[[], None]) -> None:
        while True:
            job()
            del job
            with self._lock:
                self._idle += 1
            while True:
                try:
                    job = self._jobs.get(timeout=self.idle_timeout)
                    break
                except queue.Empty:
                    with self._lock:
                        if self._idle > 0:  # nobody claimed this thread: it ends
                            self._idle -= 1
                            return
                    # else a call claimed it and its job is on the way
