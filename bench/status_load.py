"""`/status` on a large queue: how long it takes, and what it does to the other requests.

    .venv/bin/python bench/status_load.py [--tasks 200000]

hived on a fresh SQLite file; --tasks no-op tasks queued through `POST /tasks/batch` for a
capability no agent has (they stay queued: every task in the tasks table and in the in-memory
queue); then `GET /status` alone, and `GET /healthz` every 5 ms (300 samples) while another client
asks for `/status` back to back. A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Daemon, percentile  # noqa: E402
from bench.roundtrip import http  # noqa: E402


def main(tasks: int) -> None:
    daemon = Daemon()
    try:
        with http(daemon) as c:
            batch = [{"type": "noop", "requires": ["nobody"], "payload": {"n": i}} for i in range(1000)]
            started = time.perf_counter()
            for _ in range(tasks // 1000):
                r = c.post("/tasks/batch", json={"tasks": batch})
                assert r.status_code == 201, r.text[:200]
            print(f"{tasks:,} tasks queued in {time.perf_counter() - started:.0f} s")
            started = time.perf_counter()
            c.get("/status")
            print(f"GET /status alone: {(time.perf_counter() - started) * 1000:.1f} ms")
            stop = threading.Event()

            def poll() -> None:
                with http(daemon) as other:
                    while not stop.is_set():
                        other.get("/status")

            poller = threading.Thread(target=poll)
            poller.start()
            samples = []
            for _ in range(300):
                started = time.perf_counter()
                c.get("/healthz")
                samples.append((time.perf_counter() - started) * 1000)
                time.sleep(0.005)
            stop.set()
            poller.join()
            p50, p99 = percentile(samples, 50), percentile(samples, 99)
            print(f"GET /healthz while /status is asked back to back: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    finally:
        daemon.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    main(parser.parse_args().tasks)
