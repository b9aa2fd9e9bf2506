"""The cost of usage reporting on the task path, in this process (no daemon, no agents):

  hived   recording the usage a result carries (its increment batch and its `usage`: two reports,
          one commit on a real SQLite file), a result carrying none (the check that finds nothing),
          and the same reports sent again (found, not counted twice)
  agent   the `::hive-usage` filter over an exec handler's stdout: MB/s over a JSON result with
          no usage line, and over output holding a usage line every 20 lines

    .venv/bin/python bench/usage.py [--n 2000]

A figure printer, not a test. End to end: `bench/roundtrip.py --usage` against `bench/roundtrip.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hivectl.agent.usage import UsageLines  # noqa: E402
from hived.model.schemas import AttemptResult  # noqa: E402
from hived.model.usage import UsageBatch  # noqa: E402
from hived.store import tasks as task_store  # noqa: E402
from hived.store.db import Database  # noqa: E402
from hived.usage.service import UsageService  # noqa: E402


def task_row(i: int, now: datetime) -> dict[str, object]:
    empty: dict[str, object] = dict.fromkeys(
        ("agent_id", "result", "error", "lease", "idempotency_key", "run_id", "next_attempt_at"), None
    )
    return {
        **empty,
        **dict.fromkeys(("started_at", "completed_at"), None),
        "id": str(uuid.uuid4()),
        "seq": i,
        "type": "t",
        "priority": 5,
        "status": "pending",
        "requires": [],
        "payload": {},
        "attempts": 0,
        "max_attempts": 3,
        "options": {},
        "created_at": now,
    }


async def hived_side(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="hive-bench-") as tmp:
        db = Database(f"sqlite:///{tmp}/hive.db")
        await db.migrate()
        db.start()
        usage, now = UsageService(db), datetime.now(UTC)
        rows = [task_row(i, now) for i in range(n)]
        leases = [
            {"task_id": r["id"], "agent_id": "a", "lease": i + 1, "number": 1} for i, r in enumerate(rows)
        ]
        await db.write(lambda c: task_store.insert_tasks(c, rows))
        await db.write(lambda c: task_store.assign(c, leases, now))
        spent = [
            AttemptResult(
                task_id=str(r["id"]),
                attempt=1,
                lease=i + 1,
                ok=True,
                result={"usage": {"cost_usd": 0.002, "output_tokens": 50, "model": "m"}},
                usage=[
                    UsageBatch(task_id=str(r["id"]), lease=i + 1, seq=1, cost_usd=0.001, input_tokens=100)
                ],
            )
            for i, r in enumerate(rows)
        ]
        plain = [
            AttemptResult(task_id=str(r["id"]), attempt=1, lease=i + 1, ok=True, result={})
            for i, r in enumerate(rows)
        ]
        for name, results in (
            ("with usage (2 reports)", spent),
            ("again (known)", spent),
            ("without usage", plain),
        ):
            started = time.perf_counter()
            for result in results:
                await usage.record_results("a", [result])
            each = (time.perf_counter() - started) / n * 1e6
            print(f"hived: a result {name:<24} {each:9.1f} us", flush=True)
        await db.close()


def agent_side() -> None:
    result = json.dumps({"files": [f"src/module_{i}.py" for i in range(200_000)]}) + "\n"
    lines = "".join(
        '::hive-usage {"cost_usd": 0.001, "input_tokens": 90}\n' if i % 20 == 0 else f"step {i}: working\n"
        for i in range(400_000)
    )
    for name, text in (("a JSON result, no usage line", result), ("a usage line every 20 lines", lines)):
        chunks = [text[i : i + 65536] for i in range(0, len(text), 65536)]
        filt = UsageLines(lambda _inc: None, lambda _warn: None)
        started = time.perf_counter()
        for chunk in chunks:
            filt.feed(chunk)
        filt.finish()
        rate = len(text) / (time.perf_counter() - started) / 2**20
        print(f"agent: stdout filter, {name:<30} {rate:8.0f} MB/s ({len(text) / 2**20:.1f} MB)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(hived_side(args.n))
    agent_side()


if __name__ == "__main__":
    main()
