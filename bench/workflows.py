"""Scheduling overhead of the workflow engine: a generated 500-step DAG of no-op steps.

    .venv/bin/python bench/workflows.py [--steps 500] [--agents 4] [--concurrency 32] [--seed 1]
                                        [--shapes chain,layered,random,fanout] [--max-parallel N]

Three shapes of `--steps` no-op steps on real agents (hivectl.agent.builtin:noop):
  chain    each step needs the one before (every step pays a full round trip: the latency figure)
  layered  layers of `--width` steps, each needing every step of the layer before
  random   each step needs 1-3 random earlier steps (seeded)
  fanout   one for_each step over a list of `--steps` items (a param), `--max-parallel` at a time
           (0: all at once): the overhead per fanned-out item
`--inprocess` runs the chain in this process instead: the real orchestrator (store, dispatcher,
engine) and a pretend agent that takes leases from the dispatcher and reports at once, no HTTP and no
agent process: hived's own work per step, next to a single task's round trip the same way.
For each: the run's wall time (run started_at to finished_at, from hived), the handler time (the sum
of the steps' attempt durations on the agents' side is not known to hived, so the no-op handler is
taken as 0 s: the figure is an upper bound of the overhead), and overhead per step = wall / steps.
A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Daemon  # noqa: E402
from hived.model.schemas import AgentSpec, AttemptResult  # noqa: E402
from hived.model.workflow import WorkflowSpec  # noqa: E402


def chain(n: int, _rng: random.Random, _width: int) -> list[dict[str, Any]]:
    return [{"id": f"s{i}", "type": "noop", "needs": [f"s{i - 1}"] if i else []} for i in range(n)]


def layered(n: int, _rng: random.Random, width: int) -> list[dict[str, Any]]:
    steps = []
    for i in range(n):
        layer = i // width
        needs = [f"s{j}" for j in range((layer - 1) * width, layer * width)] if layer else []
        steps.append({"id": f"s{i}", "type": "noop", "needs": needs})
    return steps


def random_dag(n: int, rng: random.Random, _width: int) -> list[dict[str, Any]]:
    steps = []
    for i in range(n):
        needs = sorted({f"s{rng.randrange(i)}" for _ in range(rng.randint(1, 3))}) if i else []
        steps.append({"id": f"s{i}", "type": "noop", "needs": needs})
    return steps


def fanout(n: int, _rng: random.Random, _width: int, max_parallel: int = 0) -> list[dict[str, Any]]:
    step: dict[str, Any] = {"id": "each", "type": "noop", "for_each": "${{ params.items }}"}
    step["payload"] = {"n": "${{ index }}"}
    if max_parallel:
        step["max_parallel"] = max_parallel
    return [step]


SHAPES = {"chain": chain, "layered": layered, "random": random_dag, "fanout": fanout}


def spec_of(name: str, steps: list[dict[str, Any]], n: int) -> WorkflowSpec:
    """The workflow of a shape (a fan-out gets its items as the default of a param)."""
    params = {"items": list(range(n))} if name == "fanout" else {}
    return WorkflowSpec.model_validate({"name": f"bench-{name}", "steps": steps, "params": params})


async def pretend_agent(dispatcher: Any, stop: asyncio.Event) -> None:
    dispatcher.attach("pretend", [], 32)
    while not stop.is_set():
        leases, _ = await dispatcher.take("pretend", 32, 0.5)
        results = [
            AttemptResult(task_id=x.task_id, attempt=x.attempt, lease=x.lease, ok=True) for x in leases
        ]
        if results:
            await dispatcher.report("pretend", results)


async def in_process(steps: int, max_parallel: int) -> None:
    from hived.orchestrator import AgentOrchestrator

    with tempfile.TemporaryDirectory(prefix="hive-bench-") as tmp:
        orch = AgentOrchestrator(f"sqlite:///{tmp}/hive.db", Path(tmp))
        await orch.start()
        stop = asyncio.Event()
        agent = asyncio.create_task(pretend_agent(orch.dispatcher, stop))
        began = time.perf_counter()
        for _ in range(100):
            task = await orch.submit({"type": "noop"})
            await orch.tasks.get(task.id, wait=10)
        single = (time.perf_counter() - began) / 100
        spec = WorkflowSpec.model_validate({"name": "chain", "steps": chain(steps, random.Random(), 0)})
        run = await orch.execute_workflow(spec, {}, wait=600)
        assert run.started_at is not None and run.finished_at is not None, run.status
        wall = (run.finished_at - run.started_at).total_seconds()
        print(f"in process, {steps}-step chain: {wall / steps * 1000:.2f} ms per step")
        print(f"in process, one task submitted and waited for, one after another: {single * 1000:.2f} ms")
        spec = spec_of("fanout", fanout(steps, random.Random(), 0, max_parallel), steps)
        run = await orch.execute_workflow(spec, {}, wait=600)
        assert run.started_at is not None and run.finished_at is not None, run.status
        wall = (run.finished_at - run.started_at).total_seconds()
        print(f"in process, for_each over {steps} items, max_parallel {max_parallel or 'all'}: "
              f"{wall / steps * 1000:.2f} ms per item")
        stop.set()
        await agent
        await orch.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--width", type=int, default=10, help="steps per layer of the layered shape")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", help="a database URL (default: a fresh SQLite file)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="which shapes, comma-separated")
    parser.add_argument("--inprocess", action="store_true", help="hived's own work per step of a chain")
    parser.add_argument("--max-parallel", type=int, default=0, help="of the fanout shape (0: all at once)")
    args = parser.parse_args()
    if args.inprocess:
        asyncio.run(in_process(args.steps, args.max_parallel))
        return

    daemon = Daemon(args.db)
    try:
        for i in range(args.agents):
            body = {"name": f"noop-{i}", "handler": {"python": "hivectl.agent.builtin:noop"}}
            daemon.client.spawn_agent(AgentSpec.model_validate({**body, "max_concurrency": args.concurrency}))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            agents = daemon.client.list_agents().items
            if sum(a.status in ("active", "busy") for a in agents) == args.agents:
                break
            time.sleep(0.1)
        print(f"{args.steps} no-op steps, {args.agents} agents x {args.concurrency} slots, {daemon.state}")
        print(f"{'shape':<8} {'wall':>8} {'per step':>10} {'start->finish (client)':>24}")
        for name in args.shapes.split(","):
            make = SHAPES[name]
            if name == "fanout":
                make = functools.partial(fanout, max_parallel=args.max_parallel)
            rng = random.Random(args.seed)
            steps = make(args.steps, rng, args.width)
            spec = spec_of(name, steps, args.steps)
            daemon.client.apply_workflow(spec)
            began = time.monotonic()
            run = daemon.client.wait_run(daemon.client.execute_workflow(f"bench-{name}", {}).id)
            client_wall = time.monotonic() - began
            if run.status != "succeeded" or run.started_at is None or run.finished_at is None:
                raise SystemExit(f"{name}: run {run.id} {run.status}: {run.error}")
            wall = (run.finished_at - run.started_at).total_seconds()
            print(f"{name:<8} {wall:>7.2f}s {wall / args.steps * 1000:>8.2f}ms {client_wall:>23.2f}s")
    finally:
        daemon.close()


if __name__ == "__main__":
    main()
