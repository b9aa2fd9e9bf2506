"""The examples of waiting steps, approvals with rework and schedules, run with `hivectl` on a real
hived as a user runs them: `workflow signal`, `workflow reject --rework`, an approval's timeout,
`kind: Schedule` with `schedule list|show|trigger|pause|resume`, and `workflow run --version N`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.test_cli_offline import clean_env, hivectl, one_error_line
from tests.e2e.test_cli_workflows import EXAMPLES, cli, run_json, steps
from tests.helpers import Hived, wait_for


def status(hived: Hived, run_id: str) -> dict[str, Any]:
    return json.loads(cli(hived, "workflow", "status", run_id, "-o", "json"))


def step_is(hived: Hived, run_id: str, step: str, wanted: str) -> dict[str, Any] | None:
    current = status(hived, run_id)
    return current if steps(current)[step]["status"] == wanted else None


def test_wait_for_ci_example(hived: Hived) -> None:
    run_id = cli(hived, "workflow", "run", str(EXAMPLES / "wait-for-ci.yaml")).strip()
    waiting = wait_for(lambda: step_is(hived, run_id, "ci_green", "waiting"), timeout=60, what="ci_green")
    assert steps(waiting)["ci_green"]["task_id"] is None  # a wait holds no task, no agent
    wrong = hivectl("workflow", "signal", run_id, "deploy", env=dict(hived.env))
    assert wrong.returncode == 1 and "it waits for 'ci'" in one_error_line(wrong)
    bad = hivectl("workflow", "signal", run_id, "ci", "--data", "{nope", env=dict(hived.env))
    assert bad.returncode == 2 and "--data: not JSON" in one_error_line(bad)
    data = json.dumps({"sha": "4f2a9c1", "green": True})
    signalled = cli(hived, "workflow", "signal", run_id[:8], "ci", "--data", data)
    assert f"run/{run_id} signal/ci delivered" in signalled
    done = json.loads(cli(hived, "workflow", "status", run_id, "--watch", "-o", "json"))
    s = steps(done)
    assert done["status"] == "succeeded"
    assert s["cool_down"]["result"] == {"slept": 3.0} and s["cool_down"]["type"] == "sleep"
    assert s["ci_green"]["type"] == "signal"
    assert s["deploy"]["result"] == {"deployed": "api.tar.gz", "sha": "4f2a9c1"}


def test_rework_review_example(hived: Hived) -> None:
    example = str(EXAMPLES / "rework-review.yaml")
    run_id = cli(hived, "workflow", "run", example, "-p", "title=Notes 2.0").strip()
    first = wait_for(lambda: step_is(hived, run_id, "review", "waiting"), timeout=60, what="the review")
    assert steps(first)["draft"]["result"] == {"title": "Notes 2.0", "addressed": None}
    assert steps(first)["review"]["waiting_until"] is not None  # timeout: 4h
    comment = "mention the migration"
    out = cli(hived, "workflow", "reject", run_id, "review", "--comment", comment, "--rework", "draft")
    assert f"run/{run_id} step/review rejected, step/draft runs again" in out
    again = wait_for(lambda: step_is(hived, run_id, "review", "waiting"), timeout=60, what="the review again")
    assert steps(again)["draft"]["result"] == {"title": "Notes 2.0", "addressed": "mention the migration"}
    wrong = hivectl("workflow", "reject", run_id, "review", "--rework", "publish", env=dict(hived.env))
    assert wrong.returncode == 1 and "does not lead to approval 'review'" in one_error_line(wrong)
    cli(hived, "workflow", "approve", run_id, "review", "--comment", "good")
    done = json.loads(cli(hived, "workflow", "status", run_id, "--watch", "-o", "json"))
    assert done["status"] == "succeeded"
    assert steps(done)["review"]["result"]["rework"] == 1
    assert steps(done)["publish"]["result"] == {"published": "Notes 2.0"}

    timed_out = run_json(hived, str(EXAMPLES / "approval-timeout.yaml"), code=1)  # rejected after 2 s
    assert timed_out["status"] == "failed"
    assert steps(timed_out)["go"]["error"] == "rejected: no decision within 2s (on_timeout: reject)"
    assert steps(timed_out)["after"]["status"] == "skipped"


def test_nightly_schedule_example(hived: Hived, tmp_path: Path) -> None:
    applied = cli(hived, "apply", "-f", str(EXAMPLES / "nightly-schedule.yaml"))
    assert "schedule/nightly-report created" in applied
    (listed,) = json.loads(cli(hived, "schedule", "list", "-o", "json"))
    assert listed["name"] == "nightly-report" and listed["timezone"] == "Europe/Paris"
    assert listed["next_run_at"] is not None and listed["last_run_id"] is None
    assert "nightly-report" in cli(hived, "schedule", "list")
    run_id = cli(hived, "schedule", "trigger", "nightly-report").strip()
    done = json.loads(cli(hived, "workflow", "status", run_id, "--watch", "-o", "json"))
    assert done["status"] == "succeeded" and done["params"] == {"scope": "fleet"}
    assert steps(done)["collect"]["result"] == {"scope": "fleet", "rows": 42}
    metrics = hived.api("GET", "/metrics")
    assert 'hive_schedule_starts_total{action="started",schedule="nightly-report"} 1.0' in metrics
    shown = json.loads(cli(hived, "schedule", "show", "nightly-report", "-o", "json"))
    assert shown["last_run_id"] == run_id and shown["running"] is None
    assert "schedule/nightly-report paused" in cli(hived, "schedule", "pause", "nightly-report")
    assert json.loads(cli(hived, "schedule", "show", "nightly-report", "-o", "json"))["paused"] is True
    assert "resumed, next start" in cli(hived, "schedule", "resume", "nightly-report")
    missing = hivectl("schedule", "show", "nope", env=dict(hived.env))
    assert missing.returncode == 1 and "schedule 'nope' not found" in one_error_line(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Schedule\nname: bad\nworkflow: nightly-report\ncron: '61 * * * *'\n")
    refused = hivectl("apply", "-f", str(bad), env=dict(hived.env))
    assert refused.returncode == 1
    assert one_error_line(refused).startswith(f"error: {bad}:4: cron: '61 * * * *' is not a valid cron")
    assert len(json.loads(cli(hived, "schedule", "list", "-o", "json"))) == 1


def test_run_a_stored_version(hived: Hived, tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    for version in (1, 2):
        path.write_text(
            "kind: Workflow\nname: versioned\nsteps:\n"
            f"  - id: wait\n    sleep: {version}ms\n"
        )
        assert f"version {version}" in cli(hived, "workflow", "apply", str(path))
    old = run_json(hived, "versioned", "--version", "1")
    new = run_json(hived, "versioned")
    assert (old["version"], new["version"]) == (1, 2)
    assert steps(old)["wait"]["result"] == {"slept": 0.001}
    missing = hivectl("workflow", "run", "versioned", "--version", "7", env=dict(hived.env))
    assert missing.returncode == 1 and "workflow 'versioned' version 7 not found" in one_error_line(missing)


def test_validate_checks_schedules_and_waiting_steps_offline(tmp_path: Path) -> None:
    env = clean_env(HIVE_STATE_DIR=str(tmp_path / "state"), HIVE_SOCKET=str(tmp_path / "none.sock"))
    good = tmp_path / "s.yaml"
    good.write_text("kind: Schedule\nname: s\nworkflow: w\ncron: '*/5 * * * *'\n")
    result = hivectl("workflow", "validate", str(good), "-o", "json", env=env)
    assert result.returncode == 0, result.stderr
    (summary,) = json.loads(result.stdout)
    assert summary == {"schedule": "s", "cron": "*/5 * * * *", "timezone": "UTC", "valid": True}
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Workflow\nname: w\nsteps:\n  - id: nap\n    sleep: 1m\n    on_timeout: approve\n")
    refused = hivectl("workflow", "validate", str(bad), env=env)
    assert refused.returncode == 1
    assert one_error_line(refused) == (
        f"error: {bad}:4: steps[0]: on_timeout is for an approval step with a timeout"
    )
