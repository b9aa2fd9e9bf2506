"""Limits held cluster-wide (hived.nodes.limits): nodes on one PostgreSQL count each other's holders
and take from one bucket, so a limit holds across the cluster; a limit applied on one node is seen
and enforced by the others without a restart; the slots of a node killed while holding them are
freed once it is lost."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Hived, wait_for
from tests.integration.test_limits import hivectl

pytestmark = pytest.mark.pg

HANDLER = """import json, os, time, uuid

def run(payload):
    start = time.time()
    time.sleep(payload.get("s", 0.0))
    record = {"start": start, "end": time.time(), "node": os.environ["NODE"], "i": payload.get("i")}
    with open(os.path.join(payload["dir"], uuid.uuid4().hex), "w") as f:
        json.dump(record, f)
    return record
"""


def agent(name: str, node: str, folder: Path, *capabilities: str) -> dict[str, Any]:
    return {
        "name": name,
        "node": node,
        "max_concurrency": 4,
        "capabilities": list(capabilities),
        "env": {"PYTHONPATH": str(folder), "NODE": node},
        "handler": {"python": "record:run"},
    }


def records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in folder.iterdir()]


def most_at_once(spans: list[dict[str, Any]]) -> int:
    """The most handlers that ran at one time (an end before a start at the same instant)."""
    edges = sorted([(r["start"], 1) for r in spans] + [(r["end"], -1) for r in spans])
    running = most = 0
    for _at, step in edges:
        running += step
        most = max(most, running)
    return most


def nodes(hived_factory: Callable[..., Hived], db: str, tmp_path: Path, *names: str) -> list[Hived]:
    (tmp_path / "record.py").write_text(HANDLER)
    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\nnode_timeout: 3s\n")
    return [hived_factory(db_url=db, extra_args=["--node", n, "--config", str(config)]) for n in names]


def active(node: Hived, *names: str) -> bool:
    live = {a["name"] for a in node.api("GET", "/agents")["items"] if a["status"] == "active"}
    return set(names) <= live


def test_a_concurrency_limit_holds_across_nodes_and_a_killed_nodes_slots_are_freed(
    hived_factory: Callable[..., Hived], pg_database: str, tmp_path: Path
) -> None:
    a, b, c = nodes(hived_factory, pg_database, tmp_path, "alpha", "beta", "gamma")
    for name, node in (("wa", "alpha"), ("wb", "beta"), ("wc", "gamma")):
        a.api("PUT", f"/agents/{name}", json=agent(name, node, tmp_path, f"on-{node}"))
    wait_for(lambda: active(a, "wa", "wb", "wc"), 30, what="three agents active")
    # Applied on alpha: beta and gamma know it at once (no restart), through GET and hivectl alike.
    a.api("PUT", "/limits/repo", json={"name": "repo", "concurrency": 2})
    for other in (b, c):
        got = wait_for(
            lambda o=other: (r := o.client.get("/limits/repo")).status_code == 200 and r, 5, what="it"
        )
        shown = got.json()
        assert shown["concurrency"] == 2
    listed = hivectl(c, "limit", "list")
    assert listed.returncode == 0 and "repo" in listed.stdout, listed.stderr
    runs = tmp_path / "runs"
    runs.mkdir()
    limits = [{"name": "repo", "key": "${{ payload.repo }}"}]
    # Gamma's agent takes both slots of key r1 (tasks it alone can run), then gamma is killed. (They
    # are not retried: at the head of key r1's line, with no agent to take them, they would hold it.)
    for _ in range(2):
        long = {"dir": str(runs), "s": 600, "repo": "r1"}
        c.submit(payload=long, limits=limits, requires=["on-gamma"], max_attempts=1)
    held = wait_for(lambda: (r := b.api("GET", "/limits/repo"))["holders"] == 2 and r, 10, what="held")
    assert [(k["key"], k["holders"]) for k in held["keys"]] == [("r1", 2)]  # gamma's, seen on beta
    c.kill9()
    killed = time.time()
    # Work submitted through alpha and beta in turn, each for the other's agent; gamma holds key r1.
    ids = []
    for i in range(16):
        job = {"dir": str(runs), "s": 0.3, "repo": "r1", "i": i}
        ids.append(
            (a, b)[i % 2].submit(payload=job, limits=limits, requires=[("on-beta", "on-alpha")[i % 2]])["id"]
        )
    ids += [a.submit(payload={"dir": str(runs), "s": 0.3, "repo": "r2", "i": 99}, limits=limits)["id"]]
    ended = [(a, b)[i % 2].wait_task(t, 60) for i, t in enumerate(ids)]
    assert [t["status"] for t in ended] == ["completed"] * len(ids)
    spans = records(runs)
    r1 = [r for r in spans if r["i"] != 99]
    assert len(r1) == 16
    assert most_at_once(r1) == 2  # never three at once, cluster-wide
    assert {r["node"] for r in r1} == {"alpha", "beta"}
    # Key r1's slots stayed gamma's until it was lost (node_timeout 3 s); key r2 was free at once.
    assert min(r["start"] for r in r1) > killed + 2.0
    (other,) = [r for r in spans if r["i"] == 99]
    assert other["start"] < killed + 2.0
    wait_for(lambda: b.api("GET", "/limits/repo")["holders"] == 0, 5, what="beta sees the holds freed")


def test_a_rate_applied_on_one_node_holds_submits_through_another_without_a_restart(
    hived_factory: Callable[..., Hived], pg_database: str, tmp_path: Path
) -> None:
    a, b = nodes(hived_factory, pg_database, tmp_path, "alpha", "beta")
    for name, node in (("wa", "alpha"), ("wb", "beta")):
        a.api("PUT", f"/agents/{name}", json=agent(name, node, tmp_path))
    wait_for(lambda: active(a, "wa", "wb"), 30, what="two agents active")
    a.api("PUT", "/limits/api", json={"name": "api", "rate": "5/s", "burst": 1})
    wait_for(lambda: b.client.get("/limits/api").status_code == 200, 5, what="the limit on beta")
    runs = tmp_path / "runs"
    runs.mkdir()
    ids = [b.submit(payload={"dir": str(runs), "i": i}, limits=[{"name": "api"}])["id"] for i in range(16)]
    ids += [
        a.submit(payload={"dir": str(runs), "i": 100 + i}, limits=[{"name": "api"}])["id"] for i in range(4)
    ]
    assert all(b.wait_task(t, 60)["status"] == "completed" for t in ids)
    starts = sorted(r["start"] for r in records(runs))
    assert len(starts) == 20
    # One bucket for the cluster: 20 starts at 5/s after a burst of 1 take 19/5 = 3.8 s; a bucket
    # per node would let them through in about half that.
    assert starts[-1] - starts[0] > 3.3
    for i in range(len(starts) - 10):  # 11 starts take 2 s (a handler may start late: 0.5 s allowed)
        assert starts[i + 10] - starts[i] > 1.5, f"11 starts within {starts[i + 10] - starts[i]:.2f} s"
    # A change made on beta is enforced on alpha too.
    b.api("PUT", "/limits/api", json={"name": "api", "rate": "1/h", "burst": 1})
    wait_for(lambda: a.api("GET", "/limits/api")["rate"] == "1/h", 5, what="the change on alpha")
    late = [
        a.submit(payload={"dir": str(runs), "i": 200 + i}, limits=[{"name": "api"}])["id"] for i in range(2)
    ]
    waiting = wait_for(lambda: {a.task(t)["waiting_reason"] for t in late} - {None}, 5, what="a task waits")
    assert waiting == {"limit api"}  # (the one token left, if any, let the other through)


def test_a_schedule_applied_paused_and_deleted_on_one_node_is_so_on_the_other(
    hived_factory: Callable[..., Hived], pg_database: str, tmp_path: Path
) -> None:
    a, b = nodes(hived_factory, pg_database, tmp_path, "alpha", "beta")
    spec = {"name": "nightly", "cron": "0 3 * * *", "task": {"type": "t"}}
    assert a.api("PUT", "/schedules/nightly", json=spec)["action"] == "created"
    shown = wait_for(lambda: (r := b.client.get("/schedules/nightly")).status_code == 200 and r.json(), 5)
    assert shown["paused"] is False and shown["task"] == "t"
    assert b.api("POST", "/schedules/nightly/pause")["paused"] is True
    wait_for(lambda: a.api("GET", "/schedules/nightly")["paused"], 5, what="paused on alpha")
    b.api("PUT", "/schedules/nightly", json={**spec, "cron": "0 4 * * *"})
    wait_for(lambda: a.api("GET", "/schedules/nightly")["cron"] == "0 4 * * *", 5, what="changed on alpha")
    b.api("DELETE", "/schedules/nightly")
    wait_for(lambda: a.client.get("/schedules/nightly").status_code == 404, 5, what="gone on alpha")


def test_the_strategies_see_a_keys_tasks_on_every_node(
    hived_factory: Callable[..., Hived], pg_database: str, tmp_path: Path
) -> None:
    a, b = nodes(hived_factory, pg_database, tmp_path, "alpha", "beta")
    for name, node in (("wa", "alpha"), ("wb", "beta")):
        a.api("PUT", f"/agents/{name}", json=agent(name, node, tmp_path, f"on-{node}"))
    wait_for(lambda: active(a, "wa", "wb"), 30, what="two agents active")
    for name, strategy, most in (
        ("newest", "cancel_newest", 1),
        ("progress", "cancel_in_progress", 1),
        ("pair", "cancel_in_progress", 2),
    ):
        a.api("PUT", f"/limits/{name}", json={"name": name, "concurrency": most, "strategy": strategy})
        wait_for(lambda n=name: b.client.get(f"/limits/{n}").status_code == 200, 5, what="on beta")
    runs = tmp_path / "runs"
    runs.mkdir()
    long = {"dir": str(runs), "s": 600, "repo": "r1"}
    # cancel_newest: a task running on beta holds key r1; one submitted through alpha finds it full.
    newest = [{"name": "newest", "key": "${{ payload.repo }}"}]
    held = b.submit(payload=long, limits=newest, requires=["on-beta"], max_attempts=1)["id"]
    wait_for(lambda: b.task(held)["status"] == "running", 10, what="beta's task runs")
    late = a.submit(payload={"dir": str(runs), "repo": "r1", "i": 1}, limits=newest, requires=["on-alpha"])
    assert late["status"] == "cancelled"
    assert (
        late["error"]
        == "cancelled at submit: limit newest[r1] is full (1 of 1 taken; strategy cancel_newest)"
    )
    free = a.submit(payload={"dir": str(runs), "repo": "r2", "i": 2}, limits=newest, requires=["on-alpha"])
    assert a.wait_task(free["id"], 30)["status"] == "completed"  # another key: not full
    assert b.task(held)["status"] == "running"
    # cancel_in_progress: a long task running on beta is cancelled by a new one submitted through
    # alpha (recorded by alpha, beta's handler stopped), and the new one takes the key.
    progress = [{"name": "progress", "key": "${{ payload.repo }}"}]
    old = b.submit(payload=long, limits=progress, requires=["on-beta"], max_attempts=1)["id"]
    wait_for(lambda: b.task(old)["status"] == "running", 10, what="beta's task runs")
    new = a.submit(payload={"dir": str(runs), "repo": "r1", "i": 3}, limits=progress, requires=["on-alpha"])
    assert new["status"] in ("pending", "assigned", "running", "completed")  # (not cancelled)
    cancelled = b.task(old)
    assert cancelled["status"] == "cancelled"
    assert (
        cancelled["error"]
        == f"cancelled: task {new['id']} took limit progress[r1] (strategy cancel_in_progress)"
    )
    done = a.wait_task(new["id"], 30)
    assert done["status"] == "completed" and done["result"]["node"] == "alpha"
    # (beta frees its slot once its agent stopped the handler, and reads alpha's holders within a 1 s poll)
    wait_for(lambda: b.api("GET", "/limits/progress")["holders"] == 0, 15, what="beta sees the key free")
    # With room for two: one running on beta and one queued there (for an agent nobody has) are both
    # displaced by a new task of two units submitted through alpha.
    pair = [{"name": "pair", "key": "${{ payload.repo }}"}]
    running = b.submit(payload=long, limits=pair, requires=["on-beta"], max_attempts=1)["id"]
    wait_for(lambda: b.task(running)["status"] == "running", 10, what="beta's task runs")
    queued = b.submit(payload=long, limits=pair, requires=["on-nobody"])["id"]
    assert b.task(queued)["status"] == "pending"  # room for it beside the running one: kept
    both = a.submit(payload={"dir": str(runs), "repo": "r1", "i": 4}, limits=[{**pair[0], "units": 2}])
    why = f"cancelled: task {both['id']} took limit pair[r1] (strategy cancel_in_progress)"
    assert [(b.task(t)["status"], b.task(t)["error"]) for t in (running, queued)] == [("cancelled", why)] * 2
    assert a.wait_task(both["id"], 30)["status"] == "completed"
    assert sorted(r["i"] for r in records(runs)) == [2, 3, 4]  # the long ones never finished
