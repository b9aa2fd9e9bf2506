"""Budgets across nodes: the daemon's budget for the day, crossed by reports recorded on one node,
holds the other node's work too (hived.usage.shared), and that node refuses an estimate that no longer
fits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Hived, wait_for
from tests.integration.test_usage import spender

pytestmark = pytest.mark.pg

SPENT = "budget: the daemon's budget for today is spent"


def test_the_daemon_budget_crossed_on_one_node_holds_the_other_node(
    hived_factory: Callable[..., Hived], pg_database: str, tmp_path: Path
) -> None:
    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\nnode_timeout: 3s\nbudget_per_day: {cost_usd: 0.5, on_exceed: pause}\n")
    a = hived_factory(db_url=pg_database, extra_args=["--node", "alpha", "--config", str(config)])
    b = hived_factory(db_url=pg_database, extra_args=["--node", "beta", "--config", str(config)])
    spender(a, "spends-on-alpha", node="alpha", capabilities=["on-alpha"])
    # Waiting on beta, for an agent nobody has yet: nothing holds it but the budget, once it is spent.
    waiting = b.submit("spend", requires=["on-beta"], payload={"cost_usd": 0.01})
    assert b.task(waiting["id"])["waiting_reason"] is None
    slow = {"cost_usd": 60.0, "parts": 600, "every": 0.1}
    spend = a.submit("spend", requires=["on-alpha"], payload=slow)
    held = wait_for(
        lambda: (t := a.task(spend["id"]))["status"] == "pending" and t["attempts"] == 1 and t,
        30,
        what="alpha's task stopped and held",
    )
    assert held["attempt_history"][-1]["reason"] == "budget_exceeded"
    # beta recorded nothing, yet it heard of alpha's reports and checked the day's sum itself.
    wait_for(lambda: b.task(waiting["id"])["waiting_reason"] == SPENT, 10, what="beta holds its work")
    late = b.client.post("/tasks", json={"type": "spend", "estimate": {"cost_usd": 0.1}})
    assert late.status_code == 409 and "left of the daemon's budget" in late.text
