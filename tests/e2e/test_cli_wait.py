"""`--wait` rides out a restart of hived: runs and tasks are durable, so `hivectl workflow run --wait`
and `hivectl task submit --wait` keep waiting across a `kill -9` and restart of the daemon (saying so
on stderr) and end as the run and the task do."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.test_cli_offline import HIVECTL
from tests.helpers import REPO, Hived, wait_for

WORKFLOW = """kind: Workflow
name: slow-chain
steps:
  - {id: a, type: act, requires: [act], payload: {sleep: 2, result: {v: 7}}}
  - {id: b, type: act, requires: [act], needs: [a], payload: {got: "${{ steps.a.result.v }}"}}
"""


def test_waits_ride_out_a_kill_9_of_hived(hived_factory: Any, tmp_path: Path) -> None:
    hived: Hived = hived_factory()
    hived.spawn("worker", {"python": "hivectl.agent.builtin:act"}, capabilities=["act"], max_concurrency=2)
    workflow = tmp_path / "slow.yaml"
    workflow.write_text(WORKFLOW)
    run_cmd = [*HIVECTL, "workflow", "run", str(workflow), "--wait", "-o", "json"]
    task_cmd = [*HIVECTL, "task", "submit", "act", "--requires", "act", "--payload", '{"sleep": 2}']
    with (
        subprocess.Popen(
            run_cmd, env=hived.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as run,
        subprocess.Popen(
            [*task_cmd, "--wait", "-o", "json"],
            env=hived.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as task,
    ):
        wait_for(
            lambda: hived.api("GET", "/tasks", params={"status": "running"})["total"] == 2,
            what="both running",
        )
        hived.kill9()
        hived.start()  # the same state dir: the run, the task and the agent are picked up again
        run_out, run_err = run.communicate(timeout=90)
        task_out, task_err = task.communicate(timeout=90)
    assert run.returncode == 0, run_err
    finished = json.loads(run_out)
    assert finished["status"] == "succeeded" and finished["steps"][1]["result"] == {"got": 7}
    assert "still waiting" in run_err
    assert task.returncode == 0, task_err
    assert json.loads(task_out)["status"] == "completed"
    assert "still waiting" in task_err
