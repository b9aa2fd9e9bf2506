"""The PRD's reliability KPIs under chaos: agent uptime (>95%) and task completion (>85%) while agents
are killed and frozen at random.

    .venv/bin/python bench/chaos.py [--agents 8] [--seconds 60] [--rate 20] [--every 3]

Spawns `--agents` agents (heartbeat 1 s) and submits `--rate` tasks a second (each sleeps 0.2 s,
up to 5 attempts) for `--seconds`. Every `--every` seconds one agent, picked at random, gets
`kill -9` (two times in three) or SIGSTOP (hung: hived must notice the silence, kill and restart
it). Agent status is sampled every 0.25 s: uptime is the share of samples in which an agent was
active or busy. At the end it waits for every task to end and prints uptime (mean and worst agent),
time from fault to the agent being active again, and how the tasks ended (none may be lost).
A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Daemon, percentile  # noqa: E402
from hivectl.client import Client  # noqa: E402
from hived.model.schemas import AgentSpec, TaskSubmit  # noqa: E402

UP = ("active", "busy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=20.0, help="tasks submitted per second")
    parser.add_argument("--every", type=float, default=3.0, help="seconds between faults")
    args = parser.parse_args()
    rng = random.Random(7)
    daemon = Daemon()
    try:
        names = [f"worker-{i}" for i in range(args.agents)]
        for name in names:
            body = {
                "name": name,
                "capabilities": ["work"],
                "max_concurrency": 2,
                "heartbeat_interval": "1s",
                "handler": {"python": "hivectl.agent.builtin:act"},
                "restart": {"policy": "always", "max_restarts": 1000, "window": "60s"},
            }
            daemon.client.spawn_agent(AgentSpec.model_validate(body))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(a.status in UP for a in daemon.client.list_agents().items):
                break
            time.sleep(0.1)

        stop = threading.Event()
        samples: Counter[str] = Counter()
        up: Counter[str] = Counter()
        faults: list[tuple[float, str, int, str]] = []  # (time, agent, old pid, kind)
        recovered: list[float] = []

        def watch() -> None:
            with Client(daemon.endpoint, timeout=30) as client:
                while not stop.is_set():
                    now = time.monotonic()
                    for agent in client.list_agents().items:
                        samples[agent.name] += 1
                        if agent.status in UP:
                            up[agent.name] += 1
                            for fault in list(faults):
                                if fault[1] == agent.name and agent.pid != fault[2]:
                                    recovered.append(now - fault[0])
                                    faults.remove(fault)
                    stop.wait(0.25)

        def chaos() -> None:
            while not stop.wait(args.every):
                name = rng.choice(names)
                agent = daemon.client.get_agent(name)
                if agent.status not in UP or not agent.pid:
                    continue
                kind = "SIGSTOP" if rng.random() < 1 / 3 else "kill -9"
                faults.append((time.monotonic(), name, agent.pid, kind))
                try:
                    os.kill(agent.pid, signal.SIGSTOP if kind == "SIGSTOP" else signal.SIGKILL)
                except ProcessLookupError:
                    pass

        threads = [threading.Thread(target=watch), threading.Thread(target=chaos)]
        for thread in threads:
            thread.start()
        ids: list[str] = []
        began = time.monotonic()
        task = TaskSubmit.model_validate(
            {
                "type": "work",
                "requires": ["work"],
                "payload": {"sleep": 0.2},
                "max_attempts": 5,
                "retry": {"initial": "200ms", "max": "2s"},
            }
        )
        while (elapsed := time.monotonic() - began) < args.seconds:
            due = int(elapsed * args.rate) - len(ids)
            for _ in range(due):
                ids.append(daemon.client.submit_task(task).id)
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join()
        fault_count = len(recovered) + len(faults)

        statuses: Counter[str] = Counter()
        attempts: Counter[int] = Counter()
        deadline = time.monotonic() + 120
        pending = set(ids)
        while pending and time.monotonic() < deadline:
            for task_id in list(pending):
                got = daemon.client.get_task(task_id)
                if got.status in ("completed", "failed", "cancelled"):
                    statuses[got.status] += 1
                    attempts[got.attempts] += 1
                    pending.discard(task_id)
            time.sleep(0.2)

        uptimes = {name: up[name] / samples[name] for name in names if samples[name]}
        worst = min(uptimes, key=uptimes.__getitem__)
        print(
            f"{args.agents} agents, {args.seconds:.0f}s, {fault_count} faults "
            f"(kill -9 or SIGSTOP every {args.every:g}s, heartbeat 1s)"
        )
        print(
            f"agent uptime: mean {sum(uptimes.values()) / len(uptimes) * 100:.1f}%, "
            f"worst {uptimes[worst] * 100:.1f}% ({worst})"
        )
        print(
            f"fault to active again (new pid): p50 {percentile(recovered, 50):.2f}s, "
            f"p95 {percentile(recovered, 95):.2f}s, max {max(recovered, default=float('nan')):.2f}s "
            f"({len(recovered)} recovered during the run)"
        )
        completed = statuses["completed"]
        print(
            f"tasks: {len(ids)} submitted, {completed} completed ({completed / len(ids) * 100:.2f}%), "
            f"{statuses['failed']} failed, {len(pending)} not ended (lost); "
            f"attempts per task: {dict(sorted(attempts.items()))}"
        )
    finally:
        daemon.close()


if __name__ == "__main__":
    main()
