"""Several hived on one PostgreSQL: throughput with 1, 2 and 3 nodes, what each node costs, and the
rate of the claim statement alone.

    .venv/bin/python bench/nodes.py --pg postgresql+asyncpg://hive:hive@127.0.0.1:5432/hive [--tasks 3000]

For each cluster size, a fresh database, that many nodes (each a hived with its own socket and one
agent of `--concurrency` slots, a no-op Python handler), the tasks submitted in batches through the
nodes in turn, and the time from the first submit to the last completion. It prints tasks/s, the CPU
seconds of the hived processes per 1,000 tasks (what a node costs), and how many claims another node
won first. On a 2-core machine more nodes share the same cores: the figure to read is the per-node
cost and the database's share, not a speed-up. Then the claim statement (hived.store.nodes.CLAIM)
alone, batches of 1 and 8, against a table of pending tasks. A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO = Path(__file__).resolve().parent.parent
NOOP = "def run(payload):\n    return {}\n"


def query(url: str, method: str, sql: str) -> Any:
    """One statement on a connection of its own: `method` is asyncpg's (execute, fetch, fetchval)."""
    import asyncpg

    async def go() -> Any:
        conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
        try:
            return await getattr(conn, method)(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def admin(url: str, sql: str) -> None:
    query(url, "execute", sql)


def fetchval(url: str, sql: str) -> object:
    return query(url, "fetchval", sql)


def start_node(url: str, name: str, folder: Path) -> tuple[subprocess.Popen[bytes], object]:
    from hivectl.client import Client
    from hivectl.endpoint import Endpoint

    state = folder / name
    state.mkdir()
    socket = state / "hived.sock"
    env = dict(os.environ, HIVE_STATE_DIR=str(state), HIVE_SOCKET=str(socket))
    args = [sys.executable, "-m", "hived.main", "--state-dir", str(state), "--db", url, "--node", name]
    log = open(state / "hived.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([*args, "--log-level", "warning"], env=env, stdout=log, stderr=log, cwd=REPO)
    client = Client(Endpoint(socket=socket), timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            client.health()
            return proc, client
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"node {name} did not start; see {state / 'hived.log'}")


def run_cluster(base: str, nodes: int, tasks: int, concurrency: int, limit: str) -> dict[str, float]:
    db = f"hive_bench_nodes_{uuid.uuid4().hex[:8]}"
    admin(base, f'CREATE DATABASE "{db}"')
    url = make_url(base).set(database=db).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory(prefix="hive-nodes-") as tmp:
            folder = Path(tmp)
            (folder / "noop.py").write_text(NOOP)
            started = [start_node(url, f"n{i}", folder) for i in range(1, nodes + 1)]
            try:
                result = measure(url, started, folder, tasks, concurrency, limit)
            finally:
                for proc, client in started:
                    proc.terminate()
                    proc.wait(60)
                    client.close()  # type: ignore[attr-defined]
        # the nodes' connections are closed now, so their backends' statistics are flushed
        result["commits_per_task"] = (commits(url) - result["commits0"]) / tasks
        return result
    finally:
        admin(base, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


LIMITS = {  # --limit: one every task names, never binding here (it holds cluster-wide all the same)
    "concurrency": {"name": "bench", "concurrency": 100_000},
    "rate": {"name": "bench", "rate": "100000/s"},
}


def measure(
    url: str, started: list, folder: Path, tasks: int, concurrency: int, limit: str
) -> dict[str, float]:
    from hived.model.limits import LimitSpec
    from hived.model.schemas import AgentSpec, TaskSubmit

    for i, (_proc, client) in enumerate(started, 1):
        spec = {"name": f"w{i}", "node": f"n{i}", "max_concurrency": concurrency}
        spec["env"] = {"PYTHONPATH": str(folder)}
        client.apply_agent(AgentSpec.model_validate({**spec, "handler": {"python": "noop:run"}}))
    deadline = time.monotonic() + 60
    while sum(a.status == "active" for a in started[0][1].list_agents().items) < len(started):
        if time.monotonic() > deadline:
            raise RuntimeError("agents did not become active")
        time.sleep(0.1)
    procs = [psutil.Process(p.pid) for p, _ in started]
    cpu0 = sum(sum(p.cpu_times()[:2]) for p in procs)
    pg0, commits0 = postgres_cpu(url), commits(url)
    body = TaskSubmit.model_validate({"type": "noop"})
    if limit != "none":
        started[0][1].apply_limit(LimitSpec.model_validate(LIMITS[limit]))
        for _proc, client in started:  # the other nodes hear of it (NOTIFY), or reload it at their poll
            while not any(limit.name == "bench" for limit in client.list_limits().items):
                time.sleep(0.05)
        body = TaskSubmit.model_validate({"type": "noop", "limits": [{"name": "bench", "key": "k"}]})
    began = time.monotonic()
    for k, start in enumerate(range(0, tasks, 250)):
        started[k % len(started)][1].submit_tasks([body] * min(250, tasks - start))
    while fetchval(url, "SELECT count(*) FROM tasks WHERE status = 'completed'") < tasks:
        time.sleep(0.05)
    took = time.monotonic() - began
    cpu = sum(sum(p.cpu_times()[:2]) for p in procs) - cpu0
    pg = spent(pg0, postgres_cpu(url))
    views = [client.get_node(f"n{i}") for i, (_p, client) in enumerate(started, 1)]
    return {
        "rate": tasks / took,
        "cpu_per_1000": cpu / tasks * 1000,
        "pg_per_1000": pg / tasks * 1000,
        "commits0": commits0,
        "lost": sum(v.lost_claims or 0 for v in views),
        "taken": sum(v.taken or 0 for v in views),
    }


def postgres_cpu(url: str) -> dict[int, float]:
    """CPU seconds (user + system) of each PostgreSQL backend serving this database (not the other
    databases' backends that share the server)."""
    sql = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    pids = [r[0] for r in query(url, "fetch", sql)]
    seconds = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            seconds[pid] = times.user + times.system
    return seconds


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def commits(url: str) -> int:
    """Transactions committed in this database so far (pg_stat_database: as flushed by backends)."""
    sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    return int(fetchval(url, sql))  # type: ignore[call-overload]


def claim_rate(base: str, batch: int, rounds: int) -> float:
    """Claims per second of the claim statement alone (one connection, one transaction each)."""
    name = f"hive_bench_claim_{uuid.uuid4().hex[:8]}"
    admin(base, f'CREATE DATABASE "{name}"')
    try:
        return asyncio.run(_claims(make_url(base).set(database=name).render_as_string(False), batch, rounds))
    finally:
        admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _claims(url: str, batch: int, rounds: int) -> float:
    from sqlalchemy.ext.asyncio import create_async_engine

    from hived.store import db as store_db
    from hived.store import nodes as node_store

    database = store_db.Database(url)
    await database.migrate()
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("INSERT INTO nodes (name, slot, status) VALUES ('bench', 0, 'active')")
            await conn.exec_driver_sql(
                "INSERT INTO tasks (id, seq, type, priority, status, payload, attempts, max_attempts, "
                "options, created_at, throttled, requires) SELECT gen_random_uuid()::text, g, 'noop', 5, "
                f"'pending', '{{}}', 0, 3, '{{}}', now(), 0, '[]' FROM generate_series(1, {batch * rounds}) g"
            )
            ids = [r[0] for r in (await conn.exec_driver_sql("SELECT id FROM tasks ORDER BY seq")).fetchall()]
        began = time.perf_counter()
        for r in range(rounds):
            rows = [
                {"task_id": t, "agent_id": "a", "lease": r * batch + j + 1, "number": 1}
                for j, t in enumerate(ids[r * batch : (r + 1) * batch])
            ]
            async with engine.begin() as conn:
                won = await conn.run_sync(lambda c, rows=rows: node_store.claim(c, "bench", rows))
            assert len(won) == batch
        return rounds * batch / (time.perf_counter() - began)
    finally:
        await engine.dispose()
        await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default=os.environ.get("HIVE_TEST_PG_URL"), help="may create databases")
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--nodes", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--limit", choices=["none", *LIMITS], default="none", help="every task names one")
    parser.add_argument("--no-claims", action="store_true", help="skip the claim statement alone")
    args = parser.parse_args()
    if not args.pg:
        sys.exit("bench/nodes.py: give --pg URL (or HIVE_TEST_PG_URL)")
    limited = "" if args.limit == "none" else f", each naming a {args.limit} limit"
    per_node = f"one agent of {args.concurrency} slots per node, {os.cpu_count()} cores"
    print(f"{args.tasks} no-op tasks{limited}, {per_node}")
    for n in args.nodes:
        r = run_cluster(args.pg, n, args.tasks, args.concurrency, args.limit)
        print(
            f"{n} node(s): {r['rate']:7.0f} tasks/s  hived CPU {r['cpu_per_1000']:.2f} s per 1,000 tasks  "
            f"taken from other nodes' queues {r['taken']:.0f}, claims lost to another node {r['lost']:.0f}"
        )
        print(
            f"          PostgreSQL backends' CPU {r['pg_per_1000']:.2f} s per 1,000 tasks, "
            f"{r['commits_per_task']:.1f} commits per task (all nodes' statements, heartbeats included)"
        )
    for batch in () if args.no_claims else (1, 8):
        rate = claim_rate(args.pg, batch, 400)
        per = f"{rate / batch:.0f} statements/s"
        print(f"claim statement alone, batches of {batch}: {rate:7.0f} tasks/s ({per})")


if __name__ == "__main__":
    main()
