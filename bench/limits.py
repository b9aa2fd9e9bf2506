"""Dispatch throughput with limits declared but not binding, next to the same without limits.

    .venv/bin/python bench/limits.py [--tasks 20000] [--slots 64] [--rounds 3] [--gc default]
    .venv/bin/python bench/limits.py --measure instructions [--tasks 2000] [--rounds 1]

In this process, on the real store (a SQLite file), dispatcher, limits gate and task service, with a
pretend agent that takes its leases and reports them done at once (no HTTP, no agent process):
hived's own work per task, in two phases: `submit` (every task, no agent attached: the queue fills;
a task naming limits has them checked, its keys rendered, and waits in the gate) and `dispatch` (the
drain of that queue: dispatch rounds, the gate's promotions, leases taken, reports); `both` adds
them. Each round runs both variants on a fresh database, alternately:
  plain    tasks that name no limit
  limited  every task names a rate (1,000,000/s) and a concurrency per key (100,000 per key, 16
           keys from its payload): declared, checked at every assignment, never binding
Prints tasks/s of each phase and variant and the ratios. The garbage collector is tuned as hived
tunes it at start (hived.main.tune_gc: fewer, later collections), unless `--gc default` (Python's
thresholds: the variant holding more objects pays more for each full collection), and collected
before each run.

`--measure instructions` counts the instructions each variant runs instead (valgrind's callgrind,
all threads, over each phase; this script runs itself under valgrind): the same count on a busy
machine as on a quiet one, where wall and CPU times swing with the load.
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


PHASES = ("submit", "dispatch", "both")


async def one_run(
    tasks: int, slots: int, limited: bool, folder: Path, meter: Instructions | None = None
) -> dict[str, tuple[float, float]]:
    """Per phase, tasks per second and the process's CPU time per task (microseconds: steadier than
    the wall clock on a shared machine); with `meter`, instructions per task instead of the CPU time.
    Phases: `submit` (all tasks, in batches of 1,000, no agent slot free: the queue fills), then
    `dispatch` (the drain of that queue: dispatch rounds, leases taken, reports), and `both`."""
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
    extra: dict[str, Any] = {"limits": LIMITS} if limited else {}
    subs = [TaskSubmit(type="noop", payload={"repo": f"r{i % 16}"}, **extra) for i in range(tasks)]
    gc.collect()
    spent: dict[str, tuple[float, float]] = {}

    async def submit() -> None:
        for i in range(0, tasks, 1000):
            await task_service.submit_many(subs[i : i + 1000])

    async def dispatch() -> None:
        dispatcher.attach("agent", [], slots)
        done = 0
        while done < tasks:
            await dispatcher.run_pending()
            leases, _ = await dispatcher.take("agent", slots, 0)
            results = [
                AttemptResult(task_id=x.task_id, attempt=x.attempt, lease=x.lease, ok=True, result={})
                for x in leases
            ]
            await dispatcher.report("agent", results)
            done += len(results)

    for phase, work in (("submit", submit), ("dispatch", dispatch)):
        if meter is not None:
            meter.start()
        started, cpu = time.perf_counter(), time.process_time()
        await work()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if meter is not None:
            cpu = meter.stop() / 1e6  # (so that the figure below is instructions per task)
        spent[phase] = (elapsed, cpu)
    spent["both"] = (spent["submit"][0] + spent["dispatch"][0], spent["submit"][1] + spent["dispatch"][1])
    await dispatcher.stop()
    await db.close()
    return {phase: (tasks / elapsed, cpu / tasks * 1e6) for phase, (elapsed, cpu) in spent.items()}


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
    runs: dict[str, list[dict[str, tuple[float, float]]]] = {"plain": [], "limited": []}
    for _ in range(rounds):
        for name in ("plain", "limited"):
            with tempfile.TemporaryDirectory() as folder:
                runs[name].append(await one_run(tasks, slots, name == "limited", Path(folder), meter))
    setup = f"({tasks} tasks, {slots} slots, {rounds} rounds, gc {gc_mode})"
    for phase in PHASES:
        rate = {n: [run[phase][0] for run in runs[n]] for n in runs}
        cost = {n: [run[phase][1] for run in runs[n]] for n in runs}
        plain, limited = (statistics.median(cost[n]) for n in ("plain", "limited"))
        if meter is not None:  # (the wall clock under valgrind says nothing)
            figures = f"plain {plain:,.0f}, limited {limited:,.0f} instructions per task"
            print(f"{phase:8} {figures}: {plain / limited:.1%}")
            continue
        each = {n: ", ".join(f"{v:.0f}" for v in cost[n]) for n in cost}
        by_rate = statistics.median(rate["limited"]) / statistics.median(rate["plain"])
        print(
            f"{phase:8} plain {statistics.median(rate['plain']):,.0f} tasks/s, {plain:.0f} us CPU per task"
            f" ({each['plain']}); limited {statistics.median(rate['limited']):,.0f} tasks/s, {limited:.0f} us"
            f" ({each['limited']}): {by_rate:.1%} by throughput, {plain / limited:.1%} by CPU time"
        )
    print(f"limited / plain {setup}" + (", instructions under valgrind" if meter is not None else ""))


def under_callgrind(argv: list[str], script: str = __file__) -> int:
    """Run `script` (this one by default) again under valgrind's callgrind, collecting only where it
    says (its `Instructions` meter, found through UNDER_CALLGRIND)."""
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "callgrind.out")
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        command += [sys.executable, script, *argv]
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
