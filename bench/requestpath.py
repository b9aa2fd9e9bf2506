"""hived's own work per task on the request path of a live task, in this process: the real
orchestrator (a SQLite file, or the database of `--db`; dispatcher, task service, agent protocol)
and the real ASGI app with its middlewares and lean routes, called directly (no uvicorn, no socket,
no agent process). Per task: `POST /tasks` as a client sends it, then one `POST /agents/{id}/work`
of an agent that hands in the last task's result and takes this one's lease: what hived does per
live task, less the HTTP parsing and the socket's system calls.

    .venv/bin/python bench/requestpath.py [--tasks 3000]                 CPU time per task
    .venv/bin/python bench/requestpath.py --measure instructions [--tasks 1000]
    .venv/bin/python bench/requestpath.py --db postgresql+asyncpg://USER:PW@HOST/EMPTY_DB --node n1 [...]

`--measure instructions` counts instructions under valgrind's callgrind (as bench/limits.py does):
steady to about 0.5 % on a quiet machine, for changes of a few percent (on a busy one more of
hived's timers fire per task: up to 2 % more). A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.limits import UNDER_CALLGRIND, Instructions, under_callgrind  # noqa: E402
from hived.http.app import create_app  # noqa: E402
from hived.main import tune_gc  # noqa: E402
from hived.orchestrator import AgentOrchestrator  # noqa: E402


async def call(app: Any, path: str, body: Any) -> tuple[int, Any]:
    """One POST through the app as uvicorn would hand it over."""
    data = json.dumps(body).encode()
    headers = [(b"host", b"hive"), (b"content-type", b"application/json")]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [*headers, (b"content-length", str(len(data)).encode())], "client": None,
        "server": None, "state": {},
    }  # fmt: skip
    messages = [{"type": "http.request", "body": data, "more_body": False}]
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # (a disconnect never comes)
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], json.loads(answer["body"])


async def main(tasks: int, db: str | None = None, node: str = "") -> None:
    tune_gc()
    out = os.environ.get(UNDER_CALLGRIND)
    meter = Instructions(out) if out else None
    with tempfile.TemporaryDirectory() as folder:
        url = db or f"sqlite:///{folder}/hive.db"
        orch = AgentOrchestrator(url, Path(folder) / "state", node=(node, 15.0))
        await orch.start()
        app = create_app(orch, manage_lifecycle=False, lean=True)
        spec = {"name": "bench", "capabilities": ["bench"], "max_concurrency": 16}
        status, reg = await call(app, "/agents/register", {"spec": spec, "pid": os.getpid(), "hostname": "h"})
        assert status == 200, reg
        work_path, incarnation = f"/agents/{reg['agent']['id']}/work", reg["incarnation"]
        results: list[dict[str, Any]] = []

        async def live(n: int) -> None:
            nonlocal results
            for i in range(n):
                submit = {"type": "noop", "requires": ["bench"], "payload": {"n": i}}
                status, task = await call(app, "/tasks", submit)
                assert status == 201, task
                body = {"incarnation": incarnation, "slots": 16, "wait": 0, "results": results}
                status, work = await call(app, work_path, body)
                assert status == 200 and len(work["tasks"]) == 1, work
                results = [
                    {"task_id": x["task_id"], "attempt": x["attempt"], "lease": x["lease"], "ok": True}
                    for x in work["tasks"]
                ]

        await live(min(tasks, 500))  # warm: caches, compiled statements
        if meter is not None:
            meter.start()
            await live(tasks)
            print(f"{meter.stop() / tasks:,.0f} instructions per task ({tasks} tasks, under valgrind)")
        else:
            started = time.process_time()
            await live(tasks)
            print(f"{(time.process_time() - started) / tasks * 1e6:.0f} us CPU per task ({tasks} tasks)")
        await orch.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=None, help="default 3000; 1000 with instructions")
    parser.add_argument("--measure", choices=["time", "instructions"], default="time")
    parser.add_argument("--db", default=None, help="an empty database's URL (default: a SQLite file)")
    parser.add_argument("--node", default="", help="PostgreSQL: run as this node, as the daemon always does")
    args = parser.parse_args()
    if args.measure == "instructions" and not os.environ.get(UNDER_CALLGRIND):
        sys.exit(under_callgrind(sys.argv[1:], __file__))
    asyncio.run(main(args.tasks or (1000 if os.environ.get(UNDER_CALLGRIND) else 3000), args.db, args.node))
