"""Dispatch throughput with limits declared but not binding, next to the same without limits.

    .venv/bin/python bench/limits.py [--tasks 20000] [--slots 64] [--rounds 3] [--gc default]
    .venv/bin/python bench/limits.py --measure instructions [--tasks 2000] [--rounds 1]

In this process, on the real store (a SQLite file), dispatcher, limits gate and task service, with a
pretend agent that takes its leases and reports them done at once (no HTTP, no agent process):
hived's own work per task. Each round runs both variants on a fresh database, alternately:
  plain    tasks that name no limit
  limited  every task names a rate (1,000,000/s) and a concurrency per key (100,000 per key, 16
           keys from its payload): declared, checked at every assignment, never binding
Prints tasks/s of each and the ratio. The garbage collector is tuned as hived tunes it at start
(hived.main.tune_gc: fewer, later collections), unless `--gc default` (Python's thresholds: the
variant holding more objects pays more for each full collection), and collected before each run.

`--measure instructions` counts the instructions each variant runs instead (valgrind's callgrind,
all threads, from the first submit to the last report; this script runs itself under valgrind):
the same count on a busy machine as on a quiet one, where wall and CPU times swing with the load.
About 50 times slower: fewer tasks. A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hived.bounds import Limits  # noqa: E402
from hived.events import EventBus  # noqa: E402
from hived.limits.gate import LimitGate  # noqa: E402
from hived.limits.service import LimitsService  # noqa: E402
from hived.model.limits import LimitSpec  # noqa: E402
from hived.model.schemas import AttemptResult, TaskSubmit  # noqa: E402
from hived.store.db import Database  # noqa: E402
from hived.tasks.dispatcher import Dispatcher  # noqa: E402
from hived.tasks.service import TaskService  # noqa: E402

LIMITS = [{"name": "api"}, {"name": "repo", "key": "${{ payload.repo }}"}]


UNDER_CALLGRIND = "HIVE_BENCH_CALLGRIND"  # set in the environment of the run under valgrind: its output file


def callgrind(*command: str) -> None:
    """Send this process's callgrind a command and wait until it is done (valgrind takes commands
    only from a program that runs: this one polls meanwhile)."""
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(["callgrind_control", *command, str(os.getpid())], stdout=quiet, stderr=quiet)
    while proc.poll() is None:
        time.sleep(0.001)


class Instructions:
    """Counts the instructions of a stretch of this process (run under callgrind, not collecting)."""

    def __init__(self, out: str) -> None:
        self.out, self.dumps = out, 0

    def start(self) -> None:
        callgrind("-i", "on")

    def stop(self) -> int:
        callgrind("-i", "off")
        callgrind("-d")  # the counts since the last dump, to OUT.N
        self.dumps += 1
        text = Path(f"{self.out}.{self.dumps}").read_text()
        return int(next(line for line in text.splitlines() if line.startswith("totals:")).split()[1])


async def one_run(
    tasks: int, slots: int, limited: bool, folder: Path, meter: Instructions | None = None
) -> tuple[float, float]:
    """Tasks per second from the first submit to the last report, and the process's CPU time per
    task meanwhile (microseconds: steadier than the wall clock on a shared machine); with `meter`,
    instructions per task instead of the CPU time."""
    db = Database(f"sqlite:///{folder / 'hive.db'}")
    await db.migrate()
    db.start()
    events = EventBus()
    gate = LimitGate(lambda: time.time())
    dispatcher = Dispatcher(db, events=events, gate=gate)
    service = LimitsService(db, gate)
    service.wake = dispatcher.wake
    task_service = TaskService(db, dispatcher, Limits(), events, service)
    await service.apply(LimitSpec(name="api", rate="1000000/s"))
    await service.apply(LimitSpec(name="repo", concurrency=100_000))
    dispatcher.attach("agent", [], slots)
    extra: dict[str, Any] = {"limits": LIMITS} if limited else {}
    subs = [TaskSubmit(type="noop", payload={"repo": f"r{i % 16}"}, **extra) for i in range(tasks)]
    gc.collect()
    if meter is not None:
        meter.start()
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, tasks, 1000):
        await task_service.submit_many(subs[i : i + 1000])
    done = 0
    while done < tasks:
        await dispatcher.run_pending()
        leases, _ = await dispatcher.take("agent", slots, 0)
        results = [
            AttemptResult(task_id=lease.task_id, attempt=lease.attempt, lease=lease.lease, ok=True, result={})
            for lease in leases
        ]
        await dispatcher.report("agent", results)
        done += len(results)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if meter is not None:
        cpu = meter.stop() / 1e6  # (so that the figure below is instructions per task)
    await dispatcher.stop()
    await db.close()
    return tasks / elapsed, cpu / tasks * 1e6


async def main(tasks: int, slots: int, rounds: int, gc_mode: str) -> None:
    if gc_mode == "hived":
        from hived.main import tune_gc

        tune_gc()
    out = os.environ.get(UNDER_CALLGRIND)
    meter = Instructions(out) if out else None
    if meter is not None:  # warm both variants first, not counted (caches, compiled statements)
        for name in ("plain", "limited"):
            with tempfile.TemporaryDirectory() as folder:
                await one_run(min(tasks, 500), slots, name == "limited", Path(folder))
    figures: dict[str, list[float]] = {"plain": [], "limited": []}
    cpu: dict[str, list[float]] = {"plain": [], "limited": []}
    for _ in range(rounds):
        for name in ("plain", "limited"):
            with tempfile.TemporaryDirectory() as folder:
                rate, per_task = await one_run(tasks, slots, name == "limited", Path(folder), meter)
            figures[name].append(rate)
            cpu[name].append(per_task)
    plain, limited = (statistics.median(figures[n]) for n in ("plain", "limited"))
    cost = {name: statistics.median(values) for name, values in cpu.items()}
    setup = f"({tasks} tasks, {slots} slots, {rounds} rounds, gc {gc_mode})"
    if meter is not None:  # (the wall clock under valgrind says nothing)
        for name, value in cost.items():
            print(f"{name:8} {value:,.0f} instructions per task")
        ratio = cost["plain"] / cost["limited"]
        print(f"limited / plain by instructions: {ratio:.1%}  {setup}, under valgrind")
        return
    for name, values in figures.items():
        shown = ", ".join(f"{v:,.0f}" for v in values)
        rate = statistics.median(values)
        each = ", ".join(f"{v:.0f}" for v in cpu[name])
        print(f"{name:8} median {rate:,.0f} tasks/s  ({shown}); CPU {cost[name]:.0f} us per task ({each})")
    by_cpu = cost["plain"] / cost["limited"]
    print(f"limited / plain: {limited / plain:.1%} (by CPU time: {by_cpu:.1%})  {setup}")


def under_callgrind(argv: list[str]) -> int:
    """Run this script again under valgrind's callgrind, collecting only where it says."""
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "callgrind.out")
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        command += [sys.executable, __file__, *argv]
        env = dict(os.environ, **{UNDER_CALLGRIND: out})
        return subprocess.run(command, env=env, stderr=subprocess.DEVNULL, check=False).returncode


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tasks", type=int, default=None, help="per run (default 20000; 2000 with instructions)"
    )
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=None, help="default 3; 1 with instructions")
    parser.add_argument("--gc", choices=["hived", "default"], default="hived", help="collector thresholds")
    parser.add_argument("--measure", choices=["time", "instructions"], default="time")
    args = parser.parse_args()
    counting = args.measure == "instructions"
    if counting and UNDER_CALLGRIND not in os.environ:
        sys.exit(under_callgrind(sys.argv[1:]))
    tasks = args.tasks or (2000 if counting else 20000)
    asyncio.run(main(tasks, args.slots, args.rounds or (1 if counting else 3), args.gc))
