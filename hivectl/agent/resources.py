"""RSS and CPU of the agent's process tree (itself, its handlers and their children), via psutil.

The psutil.Process objects are kept between samples: `cpu_percent` measures since the previous call
on the same object, so a fresh object per sample would always say 0.
"""

from __future__ import annotations

import os

import psutil


class TreeStats:
    def __init__(self, pid: int | None = None) -> None:
        self.root = psutil.Process(pid or os.getpid())
        self._known: dict[int, psutil.Process] = {}

    def sample(self, children: bool = True) -> tuple[int, float]:
        """(RSS bytes, CPU percent since the last sample) of the whole tree; 100 is one core.
        `children=False` (no task running): the agent alone, without the scan of every process on
        the host that finding children costs (500 idle agents doing it every 2 s is a core's work)."""
        try:
            tree = [self.root, *self.root.children(recursive=True)] if children else [self.root]
        except psutil.Error:
            return 0, 0.0
        live: dict[int, psutil.Process] = {}
        rss, cpu = 0, 0.0
        for proc in tree:
            known = self._known.get(proc.pid)
            if known is None or known != proc:  # new, or the pid was reused
                known = proc
            try:
                with known.oneshot():
                    rss += known.memory_info().rss
                    cpu += known.cpu_percent(interval=None)
            except psutil.Error:
                continue
            live[proc.pid] = known
        self._known = live
        return rss, round(cpu, 1)
