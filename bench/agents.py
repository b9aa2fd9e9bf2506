"""Agent supervision at scale: spawn-to-active time, and hived's cost with many agents heartbeating.

    .venv/bin/python bench/agents.py [--counts 50,200] [--interval 2]

For each count: spawns that many agents (python echo handler, heartbeat every --interval s), lets
them heartbeat for --settle s, then prints hived's RSS and CPU, the agents' mean RSS, and API p99
latency (GET /agents/NAME, GET /status, POST /tasks). A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Daemon, percentile  # noqa: E402
from hived.model.schemas import AgentSpec, TaskSubmit  # noqa: E402


def spawn(daemon: Daemon, name: str, interval: float) -> None:
    spec = {"name": name, "handler": {"python": "hivectl.agent.builtin:echo"}, "heartbeat_interval": interval}
    daemon.client.spawn_agent(AgentSpec.model_validate(spec))


def active_count(daemon: Daemon) -> int:
    return sum(a.status == "active" for a in daemon.client.list_agents().items)


def latency(daemon: Daemon, samples: int, name: str) -> dict[str, float]:
    out = {}
    unroutable = TaskSubmit(type="x", requires=["none"])
    calls: tuple[tuple[str, Callable[[], object]], ...] = (
        ("GET /agents/NAME", lambda: daemon.client.get_agent(name)),
        ("GET /status", daemon.client.status),
        ("POST /tasks", lambda: daemon.client.submit_task(unroutable)),
    )
    for label, call in calls:
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        out[label] = percentile(times, 99) * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="50,200", help="fleet sizes to measure, comma-separated")
    parser.add_argument("--interval", type=float, default=2.0, help="heartbeat interval (s)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of heartbeats measured")
    parser.add_argument("--spawn-samples", type=int, default=20)
    args = parser.parse_args()

    daemon = Daemon()
    hived = psutil.Process(daemon.proc.pid)
    try:
        spawn_times = []
        for i in range(args.spawn_samples):
            name = f"s{i}"
            t0 = time.perf_counter()
            spawn(daemon, name, args.interval)
            while daemon.client.get_agent(name).status != "active":
                time.sleep(0.005)
            spawn_times.append(time.perf_counter() - t0)
        print(
            f"spawn-to-active ({args.spawn_samples} agents, one at a time): "
            f"p50 {percentile(spawn_times, 50) * 1000:.0f} ms, "
            f"p95 {percentile(spawn_times, 95) * 1000:.0f} ms"
        )
        total = args.spawn_samples
        for count in (int(c) for c in args.counts.split(",")):
            for i in range(total, count):
                spawn(daemon, f"a{i}", args.interval)
            total = max(total, count)
            deadline = time.monotonic() + 900
            while active_count(daemon) < total and time.monotonic() < deadline:
                time.sleep(0.5)
            hived.cpu_percent(None)
            time.sleep(args.settle)
            cpu = hived.cpu_percent(None)
            rss = hived.memory_info().rss / 2**20
            agents = daemon.client.list_agents().items
            agent_rss = [a.rss_bytes / 2**20 for a in agents if a.rss_bytes]
            lat = latency(daemon, 200, "s0")
            print(
                f"{total} agents heartbeating every {args.interval:g}s: hived RSS {rss:.0f} MB, "
                f"CPU {cpu:.1f}% of one core; "
                f"agent RSS mean {sum(agent_rss) / max(1, len(agent_rss)):.1f} MB, "
                f"max {max(agent_rss, default=0):.1f} MB; "
                "API p99 " + ", ".join(f"{k} {v:.1f} ms" for k, v in lat.items())
            )
    finally:
        daemon.close()


if __name__ == "__main__":
    main()
