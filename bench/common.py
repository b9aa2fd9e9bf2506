"""Shared pieces of the benchmarks: a throwaway hived (and hivectl clients of it), percentiles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hivectl.client import AsyncClient, Client, ClientError
from hivectl.endpoint import Endpoint

REPO = Path(__file__).resolve().parent.parent


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


class Stolen:
    """The share of this machine's CPU time its hypervisor gave to others (`steal` in /proc/stat)
    while the block ran: on a shared VM the figures of a run move with it."""

    def __enter__(self) -> Stolen:
        self.start = self.read()
        self.share = float("nan")
        return self

    def __exit__(self, *exc: object) -> None:
        end = self.read()
        total = sum(end) - sum(self.start)
        self.share = (end[7] - self.start[7]) / total if total and len(end) > 7 else float("nan")

    @staticmethod
    def read() -> list[int]:
        try:
            with open("/proc/stat") as stat:
                return [int(x) for x in stat.readline().split()[1:]]
        except OSError:
            return []


class Daemon:
    """hived on a fresh SQLite file (or `db_url`) in a temporary state dir."""

    def __init__(self, db_url: str | None = None) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="hive-bench-")
        self.state = Path(self.tmp.name)
        self.socket = self.state / "hived.sock"
        env = dict(os.environ, HIVE_STATE_DIR=str(self.state), HIVE_SOCKET=str(self.socket))
        args = [sys.executable, "-m", "hived.main", "--state-dir", str(self.state), "--log-level", "warning"]
        if db_url:
            args += ["--db", db_url]
        self.log = open(self.state / "hived.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=self.log, cwd=REPO)
        self.endpoint = Endpoint(socket=self.socket)
        self.client = Client(self.endpoint, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.client.health()
                return
            except ClientError:
                time.sleep(0.05)
        raise RuntimeError(f"hived did not start; see {self.state / 'hived.log'}")

    def spawn_bench_agents(self, agents: int, concurrency: int, handler: str) -> None:
        """Python agents b0, b1, ... of the capability `bench` running `handler`; returns once all
        are active."""
        from hived.model.schemas import AgentSpec

        for k in range(agents):
            spec = {"name": f"b{k}", "capabilities": ["bench"], "max_concurrency": concurrency}
            self.client.spawn_agent(AgentSpec.model_validate({**spec, "handler": {"python": handler}}))
        for k in range(agents):
            while self.client.get_agent(f"b{k}").status not in ("active", "busy"):
                time.sleep(0.05)

    def async_client(self) -> AsyncClient:
        return AsyncClient(self.endpoint, timeout=60)

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.client.close()
        self.log.close()
        self.tmp.cleanup()
