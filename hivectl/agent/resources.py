"""RSS and CPU of the agent's process tree (itself, its handlers and their children), via psutil."""

from __future__ import annotations

import os

import psutil


class TreeStats:
    def __init__(self, pid: int | None = None) -> None:
        self.root = psutil.Process(pid or os.getpid())
        self._procs: dict[int, psutil.Process] = {}

    def sample(self) -> tuple[int, float]:
        """(RSS bytes, CPU percent since the last sample) of the whole tree."""
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return 0, 0.0
        live: dict[int, psutil.Process] = {}
        rss, cpu = 0, 0.0
        for proc in tree:
            known = self._procs.get(proc.pid, proc)  # keep the object: cpu_percent needs its history
            try:
                rss += known.memory_info().rss
                cpu += known.cpu_percent(interval=None)
                live[proc.pid] = known
            except psutil.Error:
                continue
        self._procs = live
        return rss, round(cpu, 1)
