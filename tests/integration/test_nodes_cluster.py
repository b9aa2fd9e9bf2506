"""The bar of issue 19: three hived on one PostgreSQL, each a separate host (a network namespace of
its own, with its own address and state dir), 5,000 tasks submitted through different nodes, one node
killed with `kill -9` mid-run and another's network cut for longer than node_timeout. Every task
ends, no task runs on two nodes at once, no completion is recorded twice, and the work of the lost
nodes moves within node_timeout + 5 s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.helpers import Hived, wait_for
from tests.integration.cluster_harness import (
    Forwarder,
    Host,
    namespaces_problem,
    overlaps,
    runs_by_task,
    write_recorder,
)

pytestmark = pytest.mark.pg

TIMEOUT = 5.0  # node_timeout
TASKS = 5000
MS = 5  # each task's handler sleeps this long


def query(url: str, sql: str) -> list[Any]:
    import asyncpg

    async def go() -> list[Any]:
        conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture
def hosts() -> Iterator[list[Host]]:
    if problem := namespaces_problem():
        pytest.skip(f"the nodes test needs network namespaces: {problem}")
    made = [Host(i) for i in (1, 2, 3)]
    try:
        for host in made:
            host.create()
        yield made
    finally:
        for host in made:
            host.delete()


@pytest.fixture
def cluster(
    hosts: list[Host], pg_database: str, hived_factory: Callable[..., Hived], tmp_path: Path
) -> Iterator[list[Hived]]:
    url = make_url(pg_database)
    forwarder = Forwarder([h.gateway for h in hosts], 25432, (url.host or "127.0.0.1", url.port or 5432))
    forwarder.start()
    assert forwarder.ready.wait(10)
    config = tmp_path / "hived.yaml"
    config.write_text(f"kind: Daemon\nnode_timeout: {TIMEOUT}s\n")
    nodes = []
    for host in hosts:
        db = url.set(host=host.gateway, port=25432).render_as_string(hide_password=False)
        args = ["--node", f"n{host.index}", "--config", str(config)]
        nodes.append(hived_factory(db_url=db, extra_args=args, prefix=host.prefix))
    yield nodes
    forwarder.stop()
    forwarder.join(10)


def test_three_nodes_lose_one_to_kill_9_and_one_to_a_network_cut_and_every_task_ends_once(
    cluster: list[Hived], hosts: list[Host], pg_database: str, tmp_path: Path
) -> None:
    n1, n2, n3 = cluster
    folder, log = write_recorder(tmp_path), tmp_path / "runs.log"
    for i in (1, 2, 3):  # each agent placed on its node, all applied through n1
        spec = {
            "name": f"w{i}",
            "node": f"n{i}",
            "max_concurrency": 8,
            "env": {"HIVE_RUN_LOG": str(log), "NODE": f"n{i}", "PYTHONPATH": str(folder)},
            "handler": {"python": "recorder:run"},
        }
        n1.api("PUT", f"/agents/w{i}", json=spec)

    def active(node: Hived) -> list[str]:
        return sorted(a["name"] for a in node.api("GET", "/agents")["items"] if a["status"] == "active")

    wait_for(lambda: all(active(n) == ["w1", "w2", "w3"] for n in cluster), 30, what="agents active")
    assert {a["name"]: a["node"] for a in n3.api("GET", "/agents")["items"]} == {
        "w1": "n1",
        "w2": "n2",
        "w3": "n3",
    }

    retry = {"initial": "200ms", "max": "1s"}
    tasks = [
        {"type": "work", "payload": {"ms": MS, "k": k}, "max_attempts": 6, "retry": retry}
        for k in range(TASKS)
    ]
    for start in range(0, TASKS, 500):  # through every node in turn, in batches
        cluster[start // 500 % 3].api("POST", "/tasks/batch", json={"tasks": tasks[start : start + 500]})
    wait_for(lambda: log.exists() and log.stat().st_size > 20_000, 30, what="work under way on the nodes")

    n1.kill9()  # a node dies
    killed = time.time()
    hosts[2].cut()  # another's network goes silent for longer than node_timeout
    cut = time.time()
    wait_for(lambda: n2.api("GET", "/nodes/n1")["status"] == "lost", TIMEOUT + 5, what="n1 lost")
    wait_for(lambda: n2.api("GET", "/nodes/n3")["status"] == "lost", TIMEOUT + 5, what="n3 lost")
    hosts[2].restore()  # the cut lasted until both were seen lost: longer than node_timeout

    def done() -> bool:
        counts = dict(query(pg_database, "SELECT status, count(*) FROM tasks GROUP BY status"))
        print(round(time.time() - killed, 1), counts, flush=True)
        stuck = "SELECT id, attempts, next_attempt_at, lease FROM tasks WHERE status = 'retrying' LIMIT 2"
        print(query(pg_database, stuck), flush=True)
        return sum(counts.get(s, 0) for s in ("completed", "failed", "cancelled")) == TASKS

    wait_for(done, 240, interval=1.0, what="every task ended")
    statuses = dict(query(pg_database, "SELECT status, count(*) FROM tasks GROUP BY status"))
    assert statuses == {"completed": TASKS}
    won = query(
        pg_database, "SELECT count(*), count(DISTINCT task_id) FROM task_attempts WHERE outcome = 'completed'"
    )
    assert won[0][0] == won[0][1] == TASKS  # no completion recorded twice

    runs = runs_by_task(log)
    assert len(runs) == TASKS
    assert not [t for t, r in runs.items() if overlaps(r, MS / 1000 + 1)]  # never on two nodes at once

    moved = query(
        pg_database,
        "SELECT a.task_id, a.started_at, a.ended_at, (SELECT min(b.started_at) FROM task_attempts b "
        "WHERE b.task_id = a.task_id AND b.number > a.number) AS next "
        "FROM task_attempts a WHERE a.reason = 'node_lost'",
    )
    assert moved, "some attempts were in flight on the lost nodes"
    lost_at = min(killed, cut)
    # In flight when the nodes were lost: started again elsewhere within node_timeout + 5 s of it.
    first = [r for r in moved if r["started_at"].timestamp() < lost_at]
    assert first and all(r["next"].timestamp() - lost_at <= TIMEOUT + 5 for r in first)
    # Assigned by n3 after its network came back but before it heard it was lost (or lost again
    # while its connection recovered): moved as soon as that was seen.
    assert all(r["next"].timestamp() - r["ended_at"].timestamp() <= 5 for r in moved)
    wait_for(lambda: n3.api("GET", "/nodes/n3")["status"] == "active", 60, what="n3 back, joined again")
    assert "declared lost" in n3.log()
