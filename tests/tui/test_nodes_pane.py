"""The Nodes pane of a cluster: two hived on one PostgreSQL, the dashboard on one of them. Both
nodes are listed with their agents; an agent placed on a node that is not known is named above them;
a drained node, then a killed one (lost after node_timeout), change their rows while it runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Static

from tests.helpers import Hived, wait_for
from tests.tui.test_app import SIZE, app_for, cell, until

pytestmark = pytest.mark.pg
ECHO = {"python": "hivectl.agent.builtin:echo"}


async def test_nodes_pane_follows_a_drained_and_a_lost_node(
    hived_factory: Callable[..., Hived], pg_database: str, tmp_path: Path
) -> None:
    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\nnode_timeout: 3s\n")
    alpha = hived_factory(db_url=pg_database, extra_args=["--node", "alpha", "--config", str(config)])
    beta = hived_factory(db_url=pg_database, extra_args=["--node", "beta", "--config", str(config)])
    alpha.api("PUT", "/agents/wb", json={"name": "wb", "node": "beta", "handler": ECHO})
    alpha.api("PUT", "/agents/nowhere", json={"name": "nowhere", "node": "gamma", "handler": ECHO})
    wait_for(lambda: beta.api("GET", "/nodes/beta")["agents"] == ["wb"], 30, what="wb placed on beta")
    app = app_for(alpha, refresh=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await until(pilot, lambda: cell(app, "nodes-table", "beta", "agents") == "wb", what="beta's row")
        assert cell(app, "nodes-table", "alpha", "name") == "alpha (this)"
        assert cell(app, "nodes-table", "alpha", "status") == "active"
        assert cell(app, "nodes-table", "beta", "status") == "active"
        summary = app.query_one("#nodes-summary", Static)
        await until(
            pilot,
            lambda: "unscheduled (placed on no known node): nowhere @gamma" in str(summary.render()),
            what="the agent on an unknown node named",
        )
        alpha.api("POST", "/nodes/beta/drain")
        await until(
            pilot, lambda: cell(app, "nodes-table", "beta", "status") == "draining", what="beta draining"
        )
        beta.kill9()
        await until(
            pilot, lambda: cell(app, "nodes-table", "beta", "status") == "lost", timeout=30, what="beta lost"
        )
        heartbeat = cell(app, "nodes-table", "beta", "heartbeat") or ""
        assert heartbeat.endswith("s") and int(heartbeat[:-1]) >= 3  # silent for node_timeout at least
