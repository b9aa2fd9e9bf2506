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
from hived.model.schemas import AgentSpec, TaskSubmit  # noqa: E402


def task_body(fail_rate: float) -> TaskSubmit:
    return TaskSubmit.model_validate(
        {
            "type": "noop",
            "payload": {"fail_rate": fail_rate} if fail_rate else {},
            "max_attempts": 10,
            "retry": {"initial": "10ms", "max": "50ms"},
        }
    )


async def submit_singly(
    daemon: Daemon, n: int, submitters: int, fail_rate: float
) -> tuple[list[float], list[str]]:
    """One task per request: what an interactive client sees."""
    latencies: list[float] = []
    ids: list[str] = []
    counter = iter(range(n))
    body = task_body(fail_rate)

    async def worker() -> None:
        async with daemon.async_client() as client:
            for _ in counter:
                t0 = time.perf_counter()
                task = await client.submit_task(body)
                latencies.append(time.perf_counter() - t0)
                ids.append(task.id)

    await asyncio.gather(*(worker() for _ in range(submitters)))
    return latencies, ids


async def submit_batched(daemon: Daemon, n: int, batch: int, fail_rate: float) -> list[float]:
    """`batch` tasks per request (POST /tasks/batch), two clients: what a producer of bulk work does."""
    latencies: list[float] = []
    sizes = iter([min(batch, n - i) for i in range(0, n, batch)])
    body = task_body(fail_rate)

    async def worker() -> None:
        async with daemon.async_client() as client:
            for size in sizes:
                t0 = time.perf_counter()
                await client.submit_tasks([body] * size)
                latencies.append(time.perf_counter() - t0)

    await asyncio.gather(worker(), worker())
    return latencies


async def sample_gets(daemon: Daemon, ids: list[str], samples: int) -> list[float]:
    latencies = []
    async with daemon.async_client() as client:
        for i in range(samples):
            task_id = ids[(i * 7919) % len(ids)]
            t0 = time.perf_counter()
            await client.get_task(task_id)
            latencies.append(time.perf_counter() - t0)
    return latencies


def wait_done(daemon: Daemon, n: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        tasks = daemon.client.status().tasks
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
    parser.add_argument("--batch", type=int, default=200, help="tasks per batched submit")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of attempts that fail")
    parser.add_argument("--db", help="database URL (default: SQLite in a temp dir)")
    args = parser.parse_args()

    handler = "hivectl.agent.builtin:flaky" if args.fail_rate else "hivectl.agent.builtin:noop"
    daemon = Daemon(args.db)
    try:
        for i in range(args.agents):
            spec = {"name": f"bench-{i}", "handler": {"python": handler}, "max_concurrency": args.concurrency}
            daemon.client.spawn_agent(AgentSpec.model_validate(spec))
        deadline = time.monotonic() + 30
        while sum(a.status == "active" for a in daemon.client.list_agents().items) < args.agents:
            if time.monotonic() > deadline:
                raise SystemExit("agents did not become active")
            time.sleep(0.05)

        # 1. latency: single submits and gets while the agents work
        single = min(2000, args.tasks)
        submit_lat, ids = asyncio.run(submit_singly(daemon, single, args.submitters, args.fail_rate))
        get_lat = asyncio.run(sample_gets(daemon, ids, min(2000, len(ids))))
        wait_done(daemon, single, timeout=600)
        # 2. throughput: batched submits, end to end until the last task is final
        started = time.perf_counter()
        batch_lat = asyncio.run(submit_batched(daemon, args.tasks, args.batch, args.fail_rate))
        submitted = time.perf_counter()
        counts = wait_done(daemon, single + args.tasks, timeout=900)
        elapsed = time.perf_counter() - started
        done = counts.get("completed", 0) + counts.get("failed", 0) - single

        print(
            f"agents: {args.agents} x max_concurrency {args.concurrency} ({handler}), "
            f"fail rate {args.fail_rate}, database {args.db or 'SQLite'}"
        )
        print(
            f"single submits ({single}, {args.submitters} clients): "
            f"p50 {percentile(submit_lat, 50) * 1000:.2f} ms, p99 {percentile(submit_lat, 99) * 1000:.2f} ms"
        )
        print(
            f"get latency (under load): p50 {percentile(get_lat, 50) * 1000:.2f} ms, "
            f"p99 {percentile(get_lat, 99) * 1000:.2f} ms"
        )
        print(
            f"batched submits ({args.batch}/request): "
            f"{args.tasks / (submitted - started):,.0f} tasks/s accepted, "
            f"request p50 {percentile(batch_lat, 50) * 1000:.1f} ms"
        )
        print(
            f"end to end: {done} tasks final in {elapsed:.2f}s = {done / elapsed * 60:,.0f} tasks/min "
            f"(completed {counts.get('completed', 0) - single}, failed {counts.get('failed', 0)}, "
            f"retries {counts.get('retrying', 0)} pending)"
        )
    finally:
        daemon.close()


if __name__ == "__main__":
    main()
