"""Usage and budgets on the real hived with real agents: handlers' reports summed per attempt, task,
run, agent, model and day; budgets that stop attempts, fail or pause runs; a resume that raises the
budget; sums that agree exactly after kill -9 of hived mid-run."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from tests.helpers import REPO, Hived, wait_for
from tests.integration.test_config import check

SPENDER = str(REPO / "workflows-examples" / "agents" / "spender.py")
PRINTER = "import json,sys; p=json.load(sys.stdin); [print(x, flush=True) for x in p['lines']]"


def spender(hived: Hived, name: str = "spender", **spec: Any) -> dict[str, Any]:
    spec.setdefault("heartbeat_interval", "1s")
    return hived.spawn(name, {"exec": [sys.executable, SPENDER]}, **spec)


def workflow(hived: Hived, name: str, budget: dict[str, Any], n: int = 4, hold: float = 3.0) -> str:
    """A chain of n steps, each spending $0.40 at once and then working `hold` seconds."""
    steps = [
        {
            "id": f"s{i}",
            "type": "spend",
            "payload": {"cost_usd": 0.4, "tokens": 100, "hold": hold},
            **({"needs": [f"s{i - 1}"]} if i else {}),
        }
        for i in range(n)
    ]
    hived.api("POST", "/workflows", json={"name": name, "steps": steps, "budget": budget})
    return str(hived.api("POST", f"/workflows/{name}/execute", json={"params": {}})["id"])


def run_in(hived: Hived, run_id: str, *states: str, timeout: float = 60.0) -> dict[str, Any]:
    return wait_for(
        lambda: (r := hived.api("GET", f"/runs/{run_id}"))["status"] in states and r,
        timeout,
        interval=0.1,
        what=f"run {run_id} in {states}",
    )


def test_reports_are_summed_per_attempt_task_agent_model_and_day(hived: Hived) -> None:
    spender(hived)
    task = hived.submit("spend", payload={"cost_usd": 0.3, "tokens": 900, "parts": 3, "every": 0.05})
    done = hived.wait_task(task["id"])
    assert done["status"] == "completed" and done["result"] == {"answer": "done: ", "parts": 3}
    assert done["usage"] == {
        "cost_usd": 0.3,
        "input_tokens": 450,
        "output_tokens": 450,
        "tokens": 900,
        "reports": done["usage"]["reports"],
    }
    assert done["attempt_history"][0]["usage"]["cost_usd"] == 0.3
    for by, key in (
        ("agent", done["agent_id"]),
        ("model", "example-small"),
        ("day", time.strftime("%Y-%m-%d", time.gmtime())),
    ):
        report = hived.api("GET", "/usage", params={"by": by, "since": "1h"})
        assert [(r["key"], r["cost_usd"], r["tokens"]) for r in report["rows"]] == [(key, 0.3, 900)]
    assert hived.api("GET", "/usage", params={"by": "agent"})["rows"][0]["name"] == "spender"
    agent = hived.api("GET", "/agents/spender")
    assert agent["usage_today"]["cost_usd"] == 0.3
    metrics = hived.api("GET", "/metrics")
    assert 'hive_usage_cost_usd_total{agent="spender",model="example-small"} 0.3' in metrics
    assert 'hive_usage_tokens_total{agent="spender",model="example-small"} 900.0' in metrics


def test_usage_in_a_result_counts_and_bad_lines_get_one_warning(hived: Hived) -> None:
    hived.spawn("printer", {"exec": [sys.executable, "-c", PRINTER]}, heartbeat_interval="1s")
    lines = [
        '::hive-usage {"cost_usd": 0.25, "input_tokens": 10}',
        "::hive-usage {not json",
        '::hive-usage {"cost_usd": -1}',
        '::hive-usage {"input_tokens": "many"}',
        '{"ok": true, "usage": {"cost_usd": 0.5, "output_tokens": 7, "model": "big"}}',
    ]
    done = hived.wait_task(hived.submit("print", payload={"lines": lines})["id"])
    assert done["status"] == "completed"
    assert done["result"]["ok"] is True  # the usage lines are not part of the JSON result
    assert (done["usage"]["cost_usd"], done["usage"]["input_tokens"], done["usage"]["output_tokens"]) == (
        0.75,
        10,
        7,
    )
    logs = hived.api("GET", f"/tasks/{done['id']}/logs")
    assert logs.count("warning: ignored a malformed ::hive-usage line") == 1
    assert "not JSON" in logs
    models = {r["key"]: r["cost_usd"] for r in hived.api("GET", "/usage?by=model")["rows"]}
    assert models == {"big": 0.5, None: 0.25}


def test_bad_usage_in_a_result_fails_the_attempt_naming_the_field(hived: Hived) -> None:
    hived.spawn("printer", {"exec": [sys.executable, "-c", PRINTER]}, heartbeat_interval="1s")
    bad = '{"ok": true, "usage": {"cost_usd": -0.5}}'
    done = hived.wait_task(hived.submit("print", payload={"lines": [bad]}, max_attempts=1)["id"])
    assert done["status"] == "failed"
    assert done["error"].startswith("result: usage.cost_usd: Input should be greater than or equal to 0")
    assert done["attempt_history"][0]["reason"] == "result_invalid"
    assert done["usage"]["reports"] == 0


def test_an_attempt_past_its_task_budget_is_stopped_within_a_heartbeat(hived: Hived) -> None:
    spender(hived)  # heartbeat every second; $0.10 every 0.1 s, for a minute if nobody stops it
    payload = {"cost_usd": 60.0, "parts": 600, "every": 0.1}
    started = time.monotonic()
    task = hived.submit("spend", payload=payload, budget={"cost_usd": 0.5})
    done = hived.wait_task(task["id"], timeout=20)
    took = time.monotonic() - started
    assert done["status"] == "failed"
    assert done["attempt_history"][-1]["reason"] == "budget_exceeded"
    assert done["error"].startswith(f"budget exceeded: task {task['id'][:8]} cost $")
    assert done["budget"]["exceeded"] is True and done["budget"]["left_cost_usd"] == 0.0
    # It passed $0.50 within about 0.5 s; one heartbeat (1 s) carries that, and its reply stops it.
    assert done["usage"]["cost_usd"] <= 0.5 + 1.5, done["usage"]
    assert took < 10, took


def test_a_run_over_its_budget_fails_before_the_third_step_completes(hived: Hived) -> None:
    spender(hived)
    run_id = workflow(hived, "spend-fail", {"cost_usd": 1.0, "on_exceed": "fail"})
    run = run_in(hived, run_id, "failed", "succeeded")
    steps = {s["id"]: s for s in run["steps"]}
    assert run["status"] == "failed"
    assert [steps[s]["status"] for s in ("s0", "s1", "s2", "s3")] == [
        "succeeded",
        "succeeded",
        "failed",
        "cancelled",
    ]
    assert "budget exceeded" in steps["s2"]["error"]
    third = hived.task(steps["s2"]["task_id"])
    assert third["attempt_history"][-1]["reason"] == "budget_exceeded"
    assert run["usage"]["cost_usd"] == pytest.approx(1.2)
    assert run["budget"]["exceeded"] is True


def test_a_paused_run_resumes_with_more_budget_and_finishes(hived: Hived) -> None:
    spender(hived)
    run_id = workflow(hived, "spend-pause", {"cost_usd": 1.0, "on_exceed": "pause"})
    run = run_in(hived, run_id, "paused", "failed", "succeeded")
    assert run["status"] == "paused" and run["error"].startswith("budget exceeded")
    steps = {s["id"]: s for s in run["steps"]}
    assert [steps[s]["status"] for s in ("s0", "s1", "s2", "s3")] == [
        "succeeded",
        "succeeded",
        "running",
        "pending",
    ]
    held = hived.task(steps["s2"]["task_id"])
    assert held["status"] == "pending" and held["waiting_reason"].startswith("run paused")
    assert held["attempt_history"][-1]["reason"] == "budget_exceeded"
    too_little = hived.client.post(f"/runs/{run_id}/resume", json={"add_budget": 0.1})
    assert too_little.status_code == 409 and "still be over its budget" in too_little.json()["detail"]
    negative = hived.client.post(f"/runs/{run_id}/resume", json={"add_budget": -1})
    assert negative.status_code == 422 and "add_budget" in negative.json()["detail"]
    resumed = hived.api("POST", f"/runs/{run_id}/resume", json={"add_budget": 1.5})
    assert resumed["status"] == "running"
    run = run_in(hived, run_id, "succeeded", "failed", "paused")
    assert run["status"] == "succeeded"
    assert run["usage"]["cost_usd"] == pytest.approx(2.0)  # the third step ran twice
    assert run["budget"]["cost_usd"] == 2.5 and run["budget"]["left_cost_usd"] == pytest.approx(0.5)


def test_a_step_whose_estimate_does_not_fit_does_not_start(hived: Hived) -> None:
    spender(hived)
    steps = [
        {"id": "a", "type": "spend", "payload": {"cost_usd": 0.8}},
        {
            "id": "b",
            "type": "spend",
            "needs": ["a"],
            "payload": {"cost_usd": 0.1},
            "estimate": {"cost_usd": 0.3},
        },
    ]
    hived.api("POST", "/workflows", json={"name": "est", "steps": steps, "budget": {"cost_usd": 1}})
    run_id = hived.api("POST", "/workflows/est/execute", json={"params": {}})["id"]
    run = run_in(hived, run_id, "failed", "succeeded")
    b = next(s for s in run["steps"] if s["id"] == "b")
    assert run["status"] == "failed" and b["status"] == "failed" and b["task_id"] is None
    assert "does not fit in what is left of the run's budget (estimate $0.30, left $0.20)" in b["error"]


BAD_SUBMITS = [
    ({"budget": {}}, "budget: a budget needs a limit: cost_usd, tokens, or both"),
    ({"budget": {"cost_usd": 1, "on_exceed": "stop"}}, "budget.on_exceed: Input should be 'fail' or 'pause'"),
    ({"budget": {"cost_usd": -1}}, "budget.cost_usd: Input should be greater than or equal to 0"),
    ({"budget": {"tokens": "lots"}}, "budget.tokens: Input should be a valid integer"),
    ({"estimate": {"cost_usd": 2}, "budget": {"cost_usd": 1}}, "estimate: cost_usd 2 is over the budget's 1"),
    ({"budget": {"cost_usd": 1, "on_exceed": "pause"}}, "budget.on_exceed: pause holds a workflow run"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_SUBMITS, ids=[m[:30] for _, m in BAD_SUBMITS])
def test_bad_budgets_are_refused_naming_the_field(hived: Hived, fields: dict[str, Any], message: str) -> None:
    resp = hived.client.post("/tasks", json={"type": "t", **fields})
    assert resp.status_code in (409, 422) and message in resp.json()["detail"], resp.text
    assert hived.api("GET", "/tasks")["total"] == 0


def test_negative_usage_in_a_heartbeat_is_refused_naming_the_field(hived: Hived) -> None:
    agent = hived.spawn("printer", {"exec": [sys.executable, "-c", PRINTER]})
    batch = {"task_id": "x", "lease": 1, "seq": 1, "cost_usd": -0.1}
    resp = hived.client.post(f"/agents/{agent['id']}/heartbeat", json={"incarnation": 1, "usage": [batch]})
    assert (
        resp.status_code == 422
        and "usage.0.cost_usd: Input should be greater than or equal to 0" in resp.text
    )


def micro(sums: dict[str, Any]) -> tuple[int, int]:
    return round(sums["cost_usd"] * 1_000_000), sums["tokens"]


def test_sums_agree_exactly_after_kill_9_of_hived_mid_run(hived_factory: Any, db_url: str) -> None:
    hived = hived_factory(db_url=db_url)
    spender(hived, max_concurrency=4, heartbeat_interval="0.5s")
    steps = [
        {
            "id": f"s{i}",
            "type": "spend",
            "payload": {"cost_usd": 0.1, "tokens": 200, "parts": 10, "every": 0.2},
        }
        for i in range(8)
    ]
    hived.api("POST", "/workflows", json={"name": "k9", "steps": steps})
    run_id = hived.api("POST", "/workflows/k9/execute", json={"params": {}})["id"]
    wait_for(lambda: hived.api("GET", "/usage")["total"]["reports"] >= 3, 30, what="reports recorded")
    hived.kill9()
    hived.start()  # the agents live on, reconnect, and send again what hived had not answered
    run = run_in(hived, run_id, "succeeded", "failed")
    assert run["status"] == "succeeded"
    tasks = [hived.task(s["task_id"]) for s in run["steps"]]
    for task in tasks:
        attempts = [micro(a["usage"]) for a in task["attempt_history"] if a["usage"]]
        assert tuple(map(sum, zip(*attempts, strict=True))) == micro(task["usage"])
        last = task["attempt_history"][-1]
        assert last["outcome"] == "completed" and micro(last["usage"]) == (100_000, 200)  # once each
    summed = tuple(map(sum, zip(*(micro(t["usage"]) for t in tasks), strict=True)))
    assert micro(run["usage"]) == summed
    for by in ("agent", "day", "run", "model"):
        report = hived.api("GET", "/usage", params={"by": by})
        assert [micro(r) for r in report["rows"]] == [summed] and micro(report["total"]) == summed
    assert micro(hived.api("GET", "/agents/spender")["usage_today"]) == summed


def test_an_agent_over_its_budget_for_the_day_is_stopped_and_takes_no_more_work(hived: Hived) -> None:
    spender(hived, "capped", budget={"cost_usd": 0.5})
    slow = {"cost_usd": 60.0, "parts": 600, "every": 0.1}
    first = hived.wait_task(hived.submit("spend", payload=slow, max_attempts=1)["id"], timeout=20)
    assert first["status"] == "failed" and first["attempt_history"][-1]["reason"] == "budget_exceeded"
    assert "agent's budget for" in first["error"]
    shown = hived.api("GET", "/agents/capped")
    assert shown["budget"]["exceeded"] is True and shown["usage_today"]["cost_usd"] > 0.5
    second = hived.submit("spend", payload={"cost_usd": 0.1})
    other = spender(hived, "free")  # the capped agent is idle, but takes nothing more today
    done = hived.wait_task(second["id"])
    assert done["status"] == "completed" and done["agent_id"] == other["id"]


def test_the_daemon_budget_per_day_holds_work_back(hived_factory: Any, tmp_path: Any) -> None:
    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\nbudget_per_day: {cost_usd: 0.5, on_exceed: pause}\n")
    hived = hived_factory(extra_args=["--config", str(config)])
    spender(hived)
    task = hived.submit("spend", payload={"cost_usd": 60.0, "parts": 600, "every": 0.1})
    held = wait_for(
        lambda: (t := hived.task(task["id"]))["status"] == "pending" and t["attempts"] == 1 and t,
        20,
        what="the task stopped and held",
    )
    assert held["attempt_history"][-1]["reason"] == "budget_exceeded"
    assert held["waiting_reason"] == "budget: the daemon's budget for today is spent"
    late = hived.client.post("/tasks", json={"type": "spend", "estimate": {"cost_usd": 0.1}})
    assert late.status_code == 409 and "does not fit in what is left of the daemon's budget" in late.text


def test_a_daemon_budget_without_a_limit_is_refused_with_its_line(tmp_path: Any) -> None:
    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\nstop_grace: 5s\nbudget_per_day:\n  on_exceed: fail\n")
    result = check(config)
    assert result.returncode != 0
    assert f"{config}:3: budget_per_day: a budget needs a limit" in result.stderr


def test_a_python_handler_reports_with_report_usage_and_its_result(hived: Hived) -> None:
    hived.spawn("py", {"python": "hivectl.agent.builtin:spend"})
    payload = {
        "increment": {"cost_usd": 0.25, "input_tokens": 40, "model": "m"},
        "usage": {"cost_usd": 0.5, "output_tokens": 2, "model": "m"},
    }
    done = hived.wait_task(hived.submit("spend", payload=payload)["id"])
    assert done["status"] == "completed"
    assert (done["usage"]["cost_usd"], done["usage"]["tokens"], done["usage"]["reports"]) == (0.75, 42, 2)
    bad = hived.wait_task(
        hived.submit("spend", payload={"increment": {"cost_usd": -1}}, max_attempts=1)["id"]
    )
    assert bad["status"] == "failed" and "cost_usd: must be between 0" in bad["error"]
