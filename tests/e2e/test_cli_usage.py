"""Usage and budgets as a user meets them: the budgeted example of workflows-examples/ pauses on its
budget and finishes after `hivectl workflow resume --add-budget`; `hivectl usage`, `task show`,
`agent show` and `workflow status` show the spend; bad budget flags are refused naming the flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli_offline import clean_env, hivectl, one_error_line
from tests.e2e.test_cli_workflows import EXAMPLES, cli, steps
from tests.helpers import Hived, wait_for


def status(hived: Hived, run_id: str) -> dict:
    return json.loads(cli(hived, "workflow", "status", run_id, "-o", "json"))


def test_budgeted_example_pauses_then_finishes_after_resume(hived: Hived) -> None:
    example = str(EXAMPLES / "budgeted-research.yaml")
    run_id = cli(hived, "workflow", "run", example, "-p", "work=1").strip()
    paused = wait_for(lambda: (r := status(hived, run_id))["status"] == "paused" and r, 60, what="pause")
    s = steps(paused)
    assert (s["outline"]["status"], s["sources"]["status"], s["draft"]["status"]) == (
        "succeeded",
        "succeeded",
        "running",
    )
    assert s["review"]["status"] == "pending"
    assert paused["budget"]["exceeded"] is True and paused["usage"]["cost_usd"] == 1.2
    table = cli(hived, "workflow", "status", run_id)
    assert "paused" in table and "$1.20, 6000 tokens" in table and "$1.00 and 100000 tokens" in table
    by_model = json.loads(cli(hived, "usage", "--by", "model", "--since", "1h", "-o", "json"))
    assert [(r["key"], r["cost_usd"]) for r in by_model["rows"]] == [("example-small", 1.2)]
    assert "example-small" in cli(hived, "usage", "--by", "model") and "TOTAL" in cli(hived, "usage")
    draft = json.loads(cli(hived, "task", "show", s["draft"]["task_id"], "-o", "json"))
    assert draft["waiting_reason"].startswith("run paused")
    assert "budget_exceeded" in cli(hived, "task", "show", s["draft"]["task_id"])
    short = hivectl("workflow", "resume", run_id, "--add-budget", "0.1", env=dict(hived.env))
    assert short.returncode == 1 and "would still be over its budget" in one_error_line(short)
    assert cli(hived, "workflow", "resume", run_id[:8], "--add-budget", "1.50").strip().endswith("running")
    done = json.loads(cli(hived, "workflow", "status", run_id, "--watch", "-o", "json"))
    assert done["status"] == "succeeded"
    assert done["usage"]["cost_usd"] == 2.0 and done["budget"]["cost_usd"] == 2.5
    agent = cli(hived, "agent", "show", "researcher")
    assert "usage_today" in agent and "$2.00, 10000 tokens" in agent
    again = hivectl("workflow", "resume", run_id, env=dict(hived.env))
    assert again.returncode == 1 and "not paused" in one_error_line(again)


def test_task_submit_budget_flags(hived: Hived) -> None:
    bad = hivectl("task", "submit", "t", "--budget-usd", "-1", env=dict(hived.env))
    assert bad.returncode == 2 and "Invalid value for '--budget-usd'" in bad.stderr
    over = hivectl("task", "submit", "t", "--budget-usd", "1", "--estimate-usd", "2", env=dict(hived.env))
    assert over.returncode == 1 and "estimate: cost_usd 2 is over the budget's 1" in one_error_line(over)
    task_id = cli(hived, "task", "submit", "t", "--budget-usd", "0.5", "--budget-tokens", "1000").strip()
    shown = cli(hived, "task", "show", task_id)
    assert "$0.50 and 1000 tokens, on_exceed fail: spent $0.00" in shown


BAD_YAML = [
    (
        "steps:\n  - id: a\n    type: t\n    budget: {on_exceed: pause}\n",
        "wf.yaml:6: steps[0].budget: a budget needs a limit",
    ),
    (
        "budget: {cost_usd: 1, on_exceed: halt}\nsteps:\n  - id: a\n    type: t\n",
        "wf.yaml:3: budget.on_exceed: Input should be 'fail' or 'pause'",
    ),
    (
        "steps:\n  - id: a\n    type: t\n    estimate: {cost_usd: -1}\n",
        "wf.yaml:6: steps[0].estimate.cost_usd: Input should be greater than or equal to 0",
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD_YAML, ids=[m[9:40] for _, m in BAD_YAML])
def test_bad_budgets_in_yaml_name_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    offline = clean_env(HIVE_STATE_DIR=str(tmp_path / "state"), HIVE_SOCKET=str(tmp_path / "none.sock"))
    path = tmp_path / "wf.yaml"
    path.write_text("kind: Workflow\nname: wf\n" + body)
    result = hivectl("workflow", "validate", str(path), env=offline)
    assert result.returncode == 1
    assert one_error_line(result).startswith(f"error: {tmp_path}/{message}")
