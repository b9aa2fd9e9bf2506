"""The request path: round trip of one no-op task, live end-to-end rate, and POST /tasks latency while
agents run flat out. Raw HTTP over the Unix socket (httpx, as ../shared/peers/hive_bench.py does).

    .venv/bin/python bench/roundtrip.py [--n 3000] [--lat 300] [--agents 2] [--concurrency 16] [--db URL]
                                        [--usage] [--parts]

  --usage      every task reports spend: an increment while it runs (report_usage, as a
               `::hive-usage` line does) and `usage` in its result: two usage records per task
  --parts      also where the native wait's round trips go, by hived's timestamps (the same clock):
               the medians of each part, and the parts of the slowest 2 %

  round trip   idle agents; submit, and the result seen through the native wait, four ways taken in
               turn (the same moments of a noisy machine): raw HTTP (httpx, as the peer script)
               POST /tasks then GET /tasks/{id}?wait=5, or one POST /tasks?wait=5; the client library
               (hivectl.client.Client, httptools on the Unix socket) submit_task then wait_task, or
               submit_task(wait=5); p50/p99 over --lat samples of each (then POST and a 2 ms poll, as
               the peer script measures it)
  live         one client submits --n tasks one request at a time while the agents work; rate from
               the first submit to the last completion
  under load   POST /tasks p50/p99 with 1 and 8 clients submitting while the agents run flat out
A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Daemon, Stolen, percentile  # noqa: E402
from hivectl.client import Client  # noqa: E402
from hived.model.schemas import TaskSubmit  # noqa: E402

FINAL = ("completed", "failed", "cancelled")


def http(daemon: Daemon) -> httpx.Client:
    transport = httpx.HTTPTransport(uds=str(daemon.socket))
    return httpx.Client(transport=transport, base_url="http://hive", timeout=60)


USAGE: dict[str, object] = {}  # --usage: what each task reports it spent


def submit(c: httpx.Client, i: int) -> str:
    r = c.post("/tasks", json={"type": "noop", "requires": ["bench"], "payload": {"n": i, **USAGE}})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def one_request(c: httpx.Client, i: int) -> float:
    """Submit and wait in one request (`POST /tasks?wait=5`)."""
    started = time.perf_counter()
    r = c.post(
        "/tasks",
        params={"wait": 5},
        json={"type": "noop", "requires": ["bench"], "payload": {"n": i, **USAGE}},
    )
    assert r.status_code == 201 and r.json()["status"] == "completed", r.text
    return (time.perf_counter() - started) * 1000


def with_client(client: Client, i: int, one: bool) -> float:
    """Through the client library (hivectl.client): submit_task(wait=), or submit_task then wait_task."""
    started = time.perf_counter()
    task = TaskSubmit(type="noop", requires=["bench"], payload={"n": i, **USAGE})
    done = client.submit_task(task, wait=5) if one else client.wait_task(client.submit_task(task).id)
    assert done.status == "completed", done
    return (time.perf_counter() - started) * 1000


def round_trip(c: httpx.Client, i: int, poll: float | None) -> float:
    started = time.perf_counter()
    task_id = submit(c, i)
    while True:
        if poll is None:
            task = c.get(f"/tasks/{task_id}", params={"wait": 5}).json()
        else:
            task = c.get(f"/tasks/{task_id}").json()
        if task["status"] in FINAL:
            assert task["status"] == "completed", task
            return (time.perf_counter() - started) * 1000
        if poll:
            time.sleep(poll)


PARTS = ("post to row", "row to answer", "row to lease", "lease to end", "end to seen")


def parts(c: httpx.Client, i: int) -> tuple[float, ...]:
    """One round trip through the native wait, in ms: its total, then PARTS (the row: the task's
    created_at; the lease: its started_at, when the agent was sent it; the end: its completed_at)."""
    started = time.time()
    task_id = submit(c, i)
    answered = time.time()
    task = c.get(f"/tasks/{task_id}", params={"wait": 5}).json()
    seen = time.time()
    row, lease, end = (
        datetime.fromisoformat(task[k]).timestamp() for k in ("created_at", "started_at", "completed_at")
    )
    spans = (row - started, answered - row, lease - row, end - lease, seen - end)
    return tuple(1000 * x for x in (seen - started, *spans))


def show_parts(samples: list[tuple[float, ...]]) -> None:
    samples.sort()
    medians = "  ".join(
        f"{name} {percentile([s[k + 1] for s in samples], 50):.2f}" for k, name in enumerate(PARTS)
    )
    print(f"  medians (ms): total {percentile([s[0] for s in samples], 50):.2f}  {medians}")
    print(f"  the slowest 2 % (ms): total | {' | '.join(PARTS)}")
    for sample in samples[-max(1, len(samples) // 50) :]:
        print("    " + "  ".join(f"{x:6.2f}" for x in sample))


def completed(c: httpx.Client) -> int:
    return int(c.get("/status").json()["tasks"].get("completed", 0))


def wait_completed(c: httpx.Client, target: int, timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while completed(c) < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all tasks completed within {timeout}s")
        time.sleep(0.01)
    return time.perf_counter()


def live(c: httpx.Client, n: int) -> float:
    base = completed(c)
    started = time.perf_counter()
    for i in range(n):
        submit(c, i)
    return n / (wait_completed(c, base + n) - started)


def under_load(daemon: Daemon, clients: int, n: int) -> list[float]:
    """Each client submits n tasks one at a time; the agents run them as they come."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one_client() -> None:
        with http(daemon) as c:
            mine = []
            for i in range(n):
                started = time.perf_counter()
                submit(c, i)
                mine.append((time.perf_counter() - started) * 1000)
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=one_client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def show(name: str, values: list[float]) -> None:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    print(f"{name:<44} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   (n={len(values)})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--lat", type=int, default=300)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--db", default=None)
    parser.add_argument("--usage", action="store_true", help="every task reports spend (two records)")
    parser.add_argument("--handler", default="hivectl.agent.builtin:echo", help="the agents' python handler")
    parser.add_argument(
        "--parts", action="store_true", help="where the round trips go, by hived's timestamps"
    )
    args = parser.parse_args()
    if args.usage:
        USAGE["increment"] = {"cost_usd": 0.001, "input_tokens": 100, "model": "bench"}
        USAGE["usage"] = {"cost_usd": 0.002, "output_tokens": 50, "model": "bench"}
    daemon = Daemon(args.db)
    try:
        handler = "hivectl.agent.builtin:spend" if args.usage else args.handler
        daemon.spawn_bench_agents(args.agents, args.concurrency, handler)
        with Stolen() as stolen, http(daemon) as c:
            ways = {  # the round trip four ways, taken in turn (the same moments of a noisy machine)
                "round trip, httpx: POST, GET ?wait=": lambda i: round_trip(c, i, None),
                "round trip, httpx: POST ?wait=": lambda i: one_request(c, i),
                "round trip, client: submit_task, wait_task": lambda i: with_client(daemon.client, i, False),
                "round trip, client: submit_task(wait=)": lambda i: with_client(daemon.client, i, True),
            }
            for i in range(30):
                for way in ways.values():
                    way(i)
            samples: dict[str, list[float]] = {name: [] for name in ways}
            for i in range(args.lat):
                for name, way in ways.items():
                    samples[name].append(way(i))
            for name, values in samples.items():
                show(name, values)
            if args.parts:
                show_parts([parts(c, i) for i in range(args.lat)])
            show("round trip, 2 ms poll", [round_trip(c, i, 0.002) for i in range(args.lat)])
            print(f"{'live end to end, 1 client':<44} {live(c, args.n):7.0f} tasks/s", flush=True)
            base = completed(c)
            show("POST /tasks under load, 1 client", under_load(daemon, 1, args.n))
            show("POST /tasks under load, 8 clients", under_load(daemon, 8, args.n // 8))
            wait_completed(c, base + args.n + (args.n // 8) * 8)
        print(f"CPU time taken by the hypervisor meanwhile (steal): {stolen.share:.1%}")
    finally:
        daemon.close()


if __name__ == "__main__":
    main()
