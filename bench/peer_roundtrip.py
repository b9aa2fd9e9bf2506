"""The idle round trip of Hive's native wait beside Celery's, in one run: the issue's bar is Hive's p50
within 1.5x of Celery's measured in the same run, and the peers' script (../shared/peers/) measures
Hive's round trip only by polling (GET every 2 ms), as it was written before Hive had a native wait.

    bash ../shared/peers/setup.sh            # the peers' venv in /tmp/peers, Redis on 127.0.0.1:6390
    .venv/bin/python bench/peer_roundtrip.py [--blocks 5] [--lat 200] [--db URL] [--peers ../shared/peers]

Celery is measured by the peers' own code: a Celery worker started as their script starts it (prefork,
2 processes), and each block of samples taken by `celery_bench.py --latency-only` in a fresh client
(their method: submit, `.get()` the result, one at a time). Hive: hived on a fresh SQLite file (or
the empty database of `--db`) with 2 agents x 16 slots and a python no-op handler, and the client
library's `submit_task(task, wait=5)` (one request: the answer comes once the task has ended). The two
take turns, block by block, so that both see the same moments of a noisy machine; while one is
measured the other sits idle. Prints p50, p99 and the ratios. A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import REPO, Daemon, Stolen, percentile  # noqa: E402
from bench.roundtrip import with_client  # noqa: E402

PEERS_VENV = Path("/tmp/peers/venv/bin")


def celery_worker(peers: Path) -> subprocess.Popen[bytes]:
    """The Celery worker as the peers' celery_bench.py starts it."""
    cmd = [str(PEERS_VENV / "celery"), "-A", "celery_app", "worker", "--pool", "prefork"]
    log = open("/tmp/peers/celery-roundtrip-worker.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [*cmd, "--concurrency", "2", "--loglevel", "warning"], cwd=peers, stdout=log, stderr=log
    )


def celery_block(peers: Path, lat: int) -> list[float]:
    """`lat` Celery round trips (ms), taken by the peers' own code in a fresh client."""
    cmd = [str(PEERS_VENV / "python"), "celery_bench.py", "--latency-only", "--lat", str(lat)]
    done = subprocess.run(cmd, cwd=peers, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SystemExit(f"celery_bench.py --latency-only failed:\n{done.stderr[-2000:]}")
    return [float(x) for x in json.loads(done.stdout.strip().splitlines()[-1])]


def hive_block(daemon: Daemon, lat: int) -> list[float]:
    """`lat` Hive round trips (ms) through the native wait, after 10 unmeasured ones (as the peers')."""
    return [with_client(daemon.client, i, one=True) for i in range(lat + 10)][10:]


def measure(args: argparse.Namespace, daemon: Daemon, celery: list[float], hive: list[float]) -> None:
    """`args.blocks` blocks of each, in turns."""
    for block in range(args.blocks):
        celery += celery_block(args.peers, args.lat)
        hive += hive_block(daemon, args.lat)
        last = (percentile(xs[-args.lat :], 50) for xs in (celery, hive))
        print(f"block {block + 1}/{args.blocks}: p50 celery %.2f ms, hive %.2f ms" % tuple(last), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--blocks", type=int, default=5, help="turns each (default 5)")
    parser.add_argument("--lat", type=int, default=200, help="samples per block (default 200)")
    parser.add_argument("--db", default=None, help="hived's database (default: a fresh SQLite file)")
    parser.add_argument("--peers", type=Path, default=REPO.parent / "shared" / "peers")
    args = parser.parse_args()
    if not (PEERS_VENV / "celery").exists() or not Path("/tmp/peers/redis.pid").exists():
        raise SystemExit(f"the peers' venv or Redis is missing: run bash {args.peers}/setup.sh first")
    worker = celery_worker(args.peers)
    daemon = Daemon(args.db)
    try:
        daemon.spawn_bench_agents(agents=2, concurrency=16, handler="hivectl.agent.builtin:echo")
        celery_block(args.peers, 10)  # the worker is up and warm
        celery: list[float] = []
        hive: list[float] = []
        with Stolen() as stolen:
            measure(args, daemon, celery, hive)
    finally:
        daemon.close()
        worker.terminate()
        worker.wait(30)
    c50, c99, h50, h99 = (percentile(xs, p) for xs in (celery, hive) for p in (50, 99))
    for name, p50, p99, n in (
        ("Celery + Redis (.get())", c50, c99, len(celery)),
        (f"Hive {'PostgreSQL' if args.db else 'SQLite'} (submit_task(wait=))", h50, h99, len(hive)),
    ):
        print(f"round trip, {name:<38} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   (n={n})")
    print(f"Hive / Celery: p50 {h50 / c50:.2f}x (bar: 1.5x or less), p99 {h99 / c99:.2f}x")
    print(f"Hive p99 {h99:.2f} ms (bar: under 5 ms)")
    print(f"CPU time taken by the hypervisor meanwhile (steal): {stolen.share:.1%}")


if __name__ == "__main__":
    main()
