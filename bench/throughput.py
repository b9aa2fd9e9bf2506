"""End-to-end throughput of no-op tasks over real agents, and submit/get latency.

    .venv/bin/python bench/throughput.py [--tasks 20000] [--agents 4] [--concurrency 32] [--fail-rate 0.1]

Prints tasks per minute from the first submit to the last completion, and p50/p99 of submit and
get latency (measured by the client, over the Unix socket). A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Daemon, percentile  # noqa: E402


async def submit_all(
    daemon: Daemon, n: int, submitters: int, fail_rate: float, max_attempts: int
) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    ids: list[str] = []
    counter = iter(range(n))
    payload = {"fail_rate": fail_rate} if fail_rate else {}

    async def worker() -> None:
        async with daemon.async_client() as client:
            for _ in counter:
                t0 = time.perf_counter()
                resp = await client.post(
                    "/tasks",
                    json={
                        "type": "noop",
                        "payload": payload,
                        "max_attempts": max_attempts,
                        "retry": {"initial": "10ms", "max": "50ms"},
                    },
                )
                latencies.append(time.perf_counter() - t0)
                resp.raise_for_status()
                ids.append(resp.json()["id"])

    await asyncio.gather(*(worker() for _ in range(submitters)))
    return latencies, ids


async def sample_gets(daemon: Daemon, ids: list[str], samples: int) -> list[float]:
    latencies = []
    async with daemon.async_client() as client:
        for i in range(samples):
            task_id = ids[(i * 7919) % len(ids)]
            t0 = time.perf_counter()
            resp = await client.get(f"/tasks/{task_id}")
            latencies.append(time.perf_counter() - t0)
            resp.raise_for_status()
    return latencies


def wait_done(daemon: Daemon, n: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        tasks = daemon.client.get("/status").json()["tasks"]
        if tasks.get("completed", 0) + tasks.get("failed", 0) >= n or time.monotonic() > deadline:
            return tasks
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32, help="max_concurrency of each agent")
    parser.add_argument("--submitters", type=int, default=8, help="concurrent submitting clients")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of attempts that fail")
    parser.add_argument("--db", help="database URL (default: SQLite in a temp dir)")
    args = parser.parse_args()

    handler = "hivectl.agent.builtin:flaky" if args.fail_rate else "hivectl.agent.builtin:noop"
    daemon = Daemon(args.db)
    try:
        for i in range(args.agents):
            daemon.client.post(
                "/agents",
                json={
                    "name": f"bench-{i}",
                    "handler": {"python": handler},
                    "max_concurrency": args.concurrency,
                },
            ).raise_for_status()
        deadline = time.monotonic() + 30
        while (
            sum(a["status"] == "active" for a in daemon.client.get("/agents").json()["items"]) < args.agents
        ):
            if time.monotonic() > deadline:
                raise SystemExit("agents did not become active")
            time.sleep(0.05)

        started = time.perf_counter()
        submit_lat, ids = asyncio.run(submit_all(daemon, args.tasks, args.submitters, args.fail_rate, 10))
        submitted = time.perf_counter()
        get_lat = asyncio.run(sample_gets(daemon, ids, min(2000, len(ids))))
        counts = wait_done(daemon, args.tasks, timeout=600)
        elapsed = time.perf_counter() - started

        done = counts.get("completed", 0) + counts.get("failed", 0)
        print(
            f"tasks: {args.tasks} no-op ({handler.rsplit(':', 1)[1]}), agents: {args.agents} x "
            f"max_concurrency {args.concurrency}, submitters: {args.submitters}, fail rate: {args.fail_rate}"
        )
        print(
            f"end to end: {done} finished in {elapsed:.2f}s = {done / elapsed * 60:,.0f} tasks/min "
            f"(completed {counts.get('completed', 0)}, failed {counts.get('failed', 0)})"
        )
        print(f"submit phase: {args.tasks / (submitted - started):,.0f} submits/s")
        print(
            f"submit latency: p50 {percentile(submit_lat, 50) * 1000:.2f} ms, "
            f"p99 {percentile(submit_lat, 99) * 1000:.2f} ms"
        )
        print(
            f"get latency (under load): p50 {percentile(get_lat, 50) * 1000:.2f} ms, "
            f"p99 {percentile(get_lat, 99) * 1000:.2f} ms"
        )
    finally:
        daemon.close()


if __name__ == "__main__":
    main()
