"""An agent of a node fences itself (hivectl.agent.fence): when its hived is gone for 60 % of
node_timeout, the other nodes are about to run its attempts elsewhere, so hive-agent stops its
handlers first and keeps their ends for hived; the hived that comes back records them and the task
is retried."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.helpers import Hived, wait_for

pytestmark = pytest.mark.pg

HANDLER = """\
import json, os, sys, time
folder = sys.argv[1]
json.load(sys.stdin)
marker = os.path.join(folder, "first")
if not os.path.exists(marker):  # the first attempt runs on and on
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)
print(json.dumps({"pid": os.getpid()}))
"""


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_an_agent_stops_its_handler_when_its_node_is_gone_for_most_of_node_timeout(
    hived_factory: Callable[..., Hived], pg_database: str, tmp_path: Path
) -> None:
    (tmp_path / "handler.py").write_text(HANDLER)
    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\nnode_timeout: 3s\n")  # the agents fence after 1.8 s
    args = ["--node", "alpha", "--config", str(config)]
    first = hived_factory(db_url=pg_database, extra_args=args)
    agent = first.spawn("fenced", {"exec": [sys.executable, str(tmp_path / "handler.py"), str(tmp_path)]})
    task = first.submit("long", max_attempts=3)
    marker = tmp_path / "first"
    wait_for(lambda: marker.exists() and marker.read_text(), 30, what="the first attempt started")
    handler = int(marker.read_text())
    assert alive(handler)
    first.kill9()
    wait_for(lambda: not alive(handler), 15, what="the handler stopped by its agent")
    assert alive(agent["pid"])  # the agent itself waits for its hived, to be adopted
    second = hived_factory(db_url=pg_database, state_dir=first.state_dir, extra_args=args)
    done = second.wait_task(task["id"], timeout=60)
    assert done["status"] == "completed" and done["result"]["pid"] != handler
    stopped = done["attempt_history"][0]
    assert stopped["reason"] == "interrupted" and "hived was unreachable for" in stopped["error"]
    assert second.api("GET", f"/agents/{agent['id']}")["pid"] == agent["pid"]  # adopted, not restarted
