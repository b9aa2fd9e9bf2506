"""Limits held cluster-wide, the pure parts (hived.limits.holds, hived.limits.state): which of a
round's assignments the database's books admit, the other nodes' holders counted in a gate's `held`,
and (in process) a task no agent can run does not hold up its key's line."""

from __future__ import annotations

from typing import Any

import pytest

from hived.limits.gate import LimitGate
from hived.limits.holds import Books, admit
from hived.limits.service import LimitsService
from hived.limits.state import LimitState, held_elsewhere
from hived.model.limits import LimitSpec
from hived.nodes.limits import ClusterLimits
from hived.store import limits as limit_store
from tests.unit.inprocess import ChangedDuringRead, Core, result


def books(**kw: Any) -> Books:
    return Books(
        held=kw.get("held", {}),
        concurrency={"repo": 2, "api": None, **kw.get("concurrency", {})},
        tokens={"repo": None, "api": 3.0, **kw.get("tokens", {})},
        closed=kw.get("closed", set()),
    )


@pytest.mark.parametrize(
    ("found", "asks", "admitted"),
    [
        (
            books(),
            [("t1", [("repo", "x", 1)]), ("t2", [("repo", "x", 1)]), ("t3", [("repo", "x", 1)])],
            ["t1", "t2"],
        ),
        (books(held={("repo", "x"): 1}), [("t1", [("repo", "x", 1)]), ("t2", [("repo", "x", 1)])], ["t1"]),
        (books(held={("repo", "x"): 2}), [("t1", [("repo", "x", 1)]), ("t2", [("repo", "y", 1)])], ["t2"]),
        (books(), [("t1", [("repo", "x", 2)]), ("t2", [("repo", "x", 1)])], ["t1"]),  # units add up
        (books(), [("t1", [("repo", "x", 1), ("repo", "x", 2)])], []),  # one key named twice: 3 > 2
        (
            books(),
            [("t1", [("api", "", 2)]), ("t2", [("api", "", 2)]), ("t3", [("api", "", 1)])],
            ["t1", "t3"],
        ),
        (books(tokens={"api": 0.5}), [("t1", [("api", "", 1)])], []),  # the bucket is short
        (books(closed={"api"}), [("t1", [("api", "", 1)]), ("t2", [("repo", "x", 1)])], ["t2"]),
        (books(), [("t1", [("gone", "", 1), ("repo", "x", 1)])], ["t1"]),  # deleted: no longer applies
        (books(), [("t1", [("repo", "x", 1), ("api", "", 4)])], []),  # all of a task's limits, or none
    ],
)
def test_admit(found: Books, asks: list[tuple[str, list[tuple[str, str, int]]]], admitted: list[str]) -> None:
    assert admit(found, asks) == admitted


def test_admit_counts_what_it_admits_in_the_books() -> None:
    found = books()
    admit(found, [("t1", [("repo", "x", 1), ("api", "", 2)])])
    assert found.held == {("repo", "x"): 1, ("api", ""): 2} and found.tokens["api"] == 1.0


def test_other_nodes_holders_are_counted_in_held_and_a_fall_says_so() -> None:
    state = LimitState(LimitSpec(name="repo", concurrency=3), None, None, None)  # type: ignore[arg-type]
    state.held["x"] = 1  # this node's
    assert held_elsewhere(state, "x", 2) is False and state.held == {"x": 3}
    assert not state.fits("x", 1, 0.0)
    assert held_elsewhere(state, "x", 2) is False  # unchanged
    assert held_elsewhere(state, "x", 1) is True and state.held == {"x": 2} and state.fits("x", 1, 0.0)
    assert held_elsewhere(state, "x", 0) is True and state.held == {"x": 1} and state.elsewhere == {}
    assert held_elsewhere(state, None, 2) is False and state.held == {"x": 1, None: 2}


async def test_a_task_no_agent_can_run_does_not_hold_up_its_key(hive: Core) -> None:
    await hive.limit_service.apply(LimitSpec(name="repo", concurrency=1))
    hive.dispatcher.attach("a", ["here"], 4)
    ref = [{"name": "repo", "key": "x"}]
    stuck = await hive.submit(limits=ref, requires=["elsewhere"])  # first in the key's line
    runnable = await hive.submit(limits=ref, requires=["here"])
    leases = await hive.lease("a")
    assert [lease.task_id for lease in leases] == [runnable]
    assert hive.dispatcher.gate.reason(stuck) == "limit repo[x]"  # it waits, behind the one running


async def test_a_limit_applied_or_deleted_by_another_node_is_reloaded_here(hive: Core) -> None:
    other = LimitsService(hive.db, LimitGate(lambda: 0.0))  # another node's service, on the same store
    await other.apply(LimitSpec(name="api", rate="5/s", concurrency=3))
    here = hive.limit_service
    assert here.reload(await hive.db.read(limit_store.load_limits)) is True
    assert here.info("api").concurrency == 3
    assert here.reload(await hive.db.read(limit_store.load_limits)) is False  # nothing new
    await other.apply(LimitSpec(name="api", rate="5/s", concurrency=1))
    here.reload(await hive.db.read(limit_store.load_limits))
    assert here.info("api").concurrency == 1
    hive.dispatcher.attach("a", [], 4)
    held = await hive.submit(limits=[{"name": "api"}])
    (lease,) = await hive.lease("a")
    assert lease.task_id == held
    await other.delete("api")
    assert here.reload(await hive.db.read(limit_store.load_limits)) is False  # a task here holds it
    assert here.info("api").holders == 1
    await hive.dispatcher.report("a", [result(lease)])
    assert here.reload(await hive.db.read(limit_store.load_limits)) is True  # forgotten once free
    assert "api" not in hive.dispatcher.gate.limits


class FakeWire:
    node = "alpha"

    def __init__(self) -> None:
        self.on_reconnect: list[Any] = []

    def on(self, _kind: str, _fn: Any) -> None:
        pass

    async def send(self, _kind: str, _body: Any) -> bool:
        return True


async def test_a_reload_that_read_before_a_limit_was_applied_here_keeps_it(
    hive: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (the slow poll's read crossing this node's own apply forgot the limit: issue 19)
    monkeypatch.setattr("hived.nodes.limits.hold_store.sweep", lambda _conn: 0)  # (its SQL is PostgreSQL's)
    cluster = ClusterLimits(hive.db, hive.dispatcher, hive.limit_service, FakeWire())  # type: ignore[arg-type]
    apply = LimitSpec(name="api", rate="5/s")
    cluster.db = ChangedDuringRead(hive.db, lambda: hive.limit_service.apply(apply))
    await cluster.reload()
    assert hive.limit_service.info("api").rate == "5/s"  # not taken as deleted on another node
    assert cluster._full_reload  # and read again at the next turn of its loop
    await cluster.reload()
    assert hive.limit_service.info("api").rate == "5/s"
