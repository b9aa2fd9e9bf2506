"""What the machine charges for one process waking another: two processes pass one byte back and forth
over a Unix socket pair (as a client, hived and an agent pass a request), free to run on any CPU, then
both held on CPU 0. A round trip of a task is four such wakes plus the work; on a virtual machine a
wake that crosses to another vCPU can wait for the host to run it, and that wait is the tail.

    .venv/bin/python bench/wakeup.py [--n 5000]
A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import percentile  # noqa: E402


def ping_pong(n: int, cpus: set[int] | None) -> list[float]:
    """`n` round trips of one byte between this process and a child, in microseconds."""
    here, there = socket.socketpair()
    child = os.fork()
    if child == 0:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        here.close()
        while data := there.recv(16):
            there.send(data)
        os._exit(0)
    there.close()
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    samples = []
    for i in range(n + 500):  # the first 500: warm-up
        started = time.perf_counter()
        here.send(b"x")
        here.recv(16)
        if i >= 500:
            samples.append((time.perf_counter() - started) * 1e6)
    here.close()
    os.waitpid(child, 0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    everywhere = os.sched_getaffinity(0)
    for name, cpus in ((f"any of {len(everywhere)} CPUs", None), ("both on CPU 0", {0})):
        samples = ping_pong(args.n, cpus)
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        print(f"wake and answer, {name:<16} p50 {p50:7.0f} us   p99 {p99:7.0f} us   (n={args.n})")
    os.sched_setaffinity(0, everywhere)


if __name__ == "__main__":
    main()
