"""hived's CPU while agents crash-loop: the restart backoff must keep a crashing fleet cheap.

    .venv/bin/python bench/crashloop.py [--agents 10] [--seconds 30]

Spawns agents whose handler cannot even be imported (each start fails at once), with
`restart: always` and a restart limit high enough never to be reached, then samples hived's CPU
(psutil, the daemon process and its threads) over the window and counts the restarts.
A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Daemon  # noqa: E402
from hived.model.schemas import AgentSpec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    daemon = Daemon()
    try:
        restart = {"policy": "always", "max_restarts": 1000, "window": "60s"}
        for i in range(args.agents):
            body = {"name": f"crasher-{i}", "handler": {"python": "no_such_module:run"}, "restart": restart}
            daemon.client.spawn_agent(AgentSpec.model_validate(body))
        proc = psutil.Process(daemon.proc.pid)
        before = proc.cpu_times()
        began = time.monotonic()
        time.sleep(args.seconds)
        after = proc.cpu_times()
        wall = time.monotonic() - began
        cpu = (after.user + after.system - before.user - before.system) / wall * 100
        restarts = sum(a.restarts for a in daemon.client.list_agents().items)
        print(
            f"{args.agents} agents crash-looping for {wall:.0f}s: {restarts} restarts in all "
            f"(backoff 1 s doubling to 60 s), hived CPU {cpu:.1f}% of one core, "
            f"RSS {proc.memory_info().rss / 2**20:.0f} MB"
        )
    finally:
        daemon.close()


if __name__ == "__main__":
    main()
