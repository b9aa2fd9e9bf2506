"""The dashboard under load: event-to-screen latency, and the app's CPU with many agents.

    .venv/bin/python bench/tui.py [--agents 500] [--tasks 2000] [--seconds 30] [--samples 50]

1. Latency: with `hive-tui` (the real app, headless through Textual's test driver, drawing to a
   virtual screen) following a hived, submit a task and time until its row is in the queue table:
   the whole path hived -> /events -> state -> batched redraw, plus the submit request itself.
2. CPU: `--agents` external agents registered over the agent protocol and heartbeating every 2 s
   (light fake agents in this process: 500 real hive-agent processes need about 25 GB), `--tasks`
   tasks queued, and `hive-tui` running in tmux on a real terminal; its CPU is sampled with psutil.
A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Daemon, percentile  # noqa: E402
from hivectl.client import ClientError  # noqa: E402
from hived.model.schemas import AgentSpec, HeartbeatRequest, RegisterRequest, TaskSubmit  # noqa: E402
from tui.app import HiveApp  # noqa: E402


async def latency(daemon: Daemon, samples: int) -> list[float]:
    app = HiveApp(daemon.async_client(), flush=float(os.environ.get("HIVE_TUI_FLUSH", "0.1")))
    app.animation_level = "none"
    found: list[float] = []
    async with app.run_test(size=(150, 45)) as pilot, daemon.async_client() as client:
        while not app.connected:
            await pilot.pause(0.05)
        await pilot.press("2")
        table = app.query_one("#tasks-table")
        unroutable = TaskSubmit(type="bench-tui", requires=["nobody"])
        for _ in range(samples):
            began = time.perf_counter()
            task = await client.submit_task(unroutable)
            while task.id not in table.rows:  # type: ignore[attr-defined]
                await asyncio.sleep(0.002)
            found.append(time.perf_counter() - began)
    return found


async def fake_agents(daemon: Daemon, n: int, stop: asyncio.Event) -> None:
    """n external agents that register and heartbeat every 2 s (no work: they have no slots)."""
    async with daemon.async_client() as client:
        ids = []
        for i in range(n):
            spec = AgentSpec.model_validate(
                {"name": f"fake-{i}", "capabilities": ["bench"], "heartbeat_interval": "2s"}
            )
            request = RegisterRequest(spec=spec, pid=os.getpid(), hostname=socket.gethostname())
            reply = await client.register_agent(request)
            ids.append((reply.agent.id, reply.incarnation))

        async def beat(agent_id: str, incarnation: int, offset: float) -> None:
            await asyncio.sleep(offset)
            while not stop.is_set():
                await client.heartbeat(agent_id, HeartbeatRequest(incarnation=incarnation))
                await asyncio.sleep(2.0)

        await asyncio.gather(*(beat(a, inc, 2.0 * k / n) for k, (a, inc) in enumerate(ids)))


async def cpu_under_load(daemon: Daemon, agents: int, tasks: int, seconds: float) -> tuple[float, float]:
    tmux = shutil.which("tmux")
    if tmux is None:
        raise SystemExit("tmux is needed for the CPU figure")
    stop = asyncio.Event()
    load = asyncio.create_task(fake_agents(daemon, agents, stop))
    async with daemon.async_client() as client:
        for start in range(0, tasks, 500):
            queued = TaskSubmit(type="queued", requires=["nobody"])
            await client.submit_tasks([queued] * min(500, tasks - start))
    server = f"bench-tui-{uuid.uuid4().hex[:6]}"
    command = (
        f"env HIVE_SOCKET={daemon.socket} TERM=xterm-256color {Path(sys.executable).parent / 'hive-tui'}"
    )
    await asyncio.to_thread(
        subprocess.run,
        [tmux, "-L", server, "new-session", "-d", "-s", "b", "-x", "200", "-y", "60", command],
        check=True,
    )
    try:
        await asyncio.sleep(5)  # connect, first snapshot, first draw
        shown = await asyncio.to_thread(
            subprocess.run,
            [tmux, "-L", server, "display", "-p", "-t", "b", "#{pane_pid}"],
            capture_output=True,
            text=True,
            check=True,
        )
        pane_pid = int(shown.stdout)
        proc = psutil.Process(pane_pid)
        proc = next(
            (p for p in [proc, *proc.children(recursive=True)] if "hive-tui" in " ".join(p.cmdline())), proc
        )
        before = proc.cpu_times()
        began = time.monotonic()
        await asyncio.sleep(seconds)
        after = proc.cpu_times()
        cpu = (after.user + after.system - before.user - before.system) / (time.monotonic() - began) * 100
        rss = proc.memory_info().rss / 2**20
    finally:
        await asyncio.to_thread(subprocess.run, [tmux, "-L", server, "kill-server"], capture_output=True)
        stop.set()
        load.cancel()
    return cpu, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    daemon = Daemon()
    try:
        found = asyncio.run(latency(daemon, args.samples))
        print(
            f"event to row on screen (submit included), {len(found)} samples: "
            f"p50 {percentile(found, 50) * 1000:.0f} ms, p95 {percentile(found, 95) * 1000:.0f} ms, "
            f"max {max(found) * 1000:.0f} ms"
        )
        cpu, rss = asyncio.run(cpu_under_load(daemon, args.agents, args.tasks, args.seconds))
        print(
            f"hive-tui with {args.agents} agents heartbeating every 2 s and {args.tasks} queued tasks, "
            f"over {args.seconds:.0f} s: CPU {cpu:.1f}% of one core, RSS {rss:.0f} MB"
        )
    except ClientError as exc:
        raise SystemExit(f"bench/tui.py: {exc}") from None
    finally:
        daemon.close()


if __name__ == "__main__":
    main()
