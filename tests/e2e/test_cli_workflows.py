"""`hivectl workflow ...` as a user runs it: offline validation with file:line, and every example
of workflows-examples/ run end to end on a real hived with the agents and scripts it declares."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.test_cli_offline import clean_env, hivectl, one_error_line
from tests.helpers import REPO, Hived, wait_for

EXAMPLES = REPO / "workflows-examples"


@pytest.fixture
def offline(tmp_path: Path) -> dict[str, str]:
    return clean_env(HIVE_STATE_DIR=str(tmp_path / "state"), HIVE_SOCKET=str(tmp_path / "none.sock"))


HEAD = "kind: Workflow\nname: wf\n"
INVALID = [
    (HEAD + "steps:\n  - id: a\n    type: t\n    colour: red\n", "wf.yaml:6: steps[0]: unknown key 'colour'"),
    (HEAD + "steps:\n  - id: a\n    type: t\n    priority: high\n", "wf.yaml:6: steps[0].priority:"),
    (
        HEAD + "steps:\n  - id: a\n    type: t\n  - id: a\n    type: t\n",
        "wf.yaml:6: steps[1].id: duplicate step id 'a'",
    ),
    (
        HEAD + "steps:\n  - id: a\n    type: t\n    needs: [ghost]\n",
        "wf.yaml:6: steps[0].needs[0]: step 'a' needs unknown step 'ghost'",
    ),
    (
        HEAD + "steps:\n  - {id: a, type: t, needs: [c]}\n  - {id: b, type: t, needs: [a]}\n"
        "  - {id: c, type: t, needs: [b]}\n",
        "wf.yaml:4: steps[0].needs: dependency cycle: a -> c -> b -> a",
    ),
    (
        HEAD + "steps:\n  - id: a\n    type: t\n    payload: {x: '${{ params.nope }}'}\n",
        "wf.yaml:6: steps[0].payload.x: step 'a' uses unknown param 'nope'",
    ),
    (
        HEAD + "steps:\n  - id: a\n    type: t\n    when: 'steps.a.result =='\n",
        "wf.yaml:6: steps[0].when: step 'a': CEL syntax error",
    ),
    (
        HEAD + "steps:\n  - {id: a, type: t}\n  - {id: b, type: t, when: 'steps.a.status == \"x\"'}\n",
        "wf.yaml:5: steps[1].when: step 'b' uses steps.a but does not need it (add it to needs)",
    ),
    (HEAD + "steps: []\n", "wf.yaml:3: steps: List should have at least 1 item"),
    (HEAD + "steps:\n  - id: run-tests\n    type: t\n", "wf.yaml:4: steps[0].id: must be 1-63 letters"),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[m.split(":", 2)[2][:40] for _, m in INVALID])
def test_validate_names_file_line_and_field(
    offline: dict[str, str], tmp_path: Path, text: str, message: str
) -> None:
    check_invalid(offline, tmp_path, text, message)


def check_invalid(offline: dict[str, str], tmp_path: Path, text: str, message: str) -> None:
    """validate and apply refuse `text` with one line starting with `message` (FILE:LINE: ...)."""
    path = tmp_path / "wf.yaml"
    path.write_text(text)
    result = hivectl("workflow", "validate", str(path), env=offline)
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith(f"error: {tmp_path}/{message}"), line
    # apply refuses the same file before reaching any daemon (exit 1, not 3: nothing was sent)
    applied = hivectl("workflow", "apply", str(path), env=offline)
    assert applied.returncode == 1 and one_error_line(applied) == line


def test_validate_the_examples_offline(offline: dict[str, str]) -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml") if "Workflow" in p.read_text())
    assert len(files) >= 4
    for name in files:
        result = hivectl("workflow", "validate", name, "-o", "json", env=offline)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)[0]["valid"] is True


def cli(hived: Hived, *args: str, code: int = 0, timeout: float = 120) -> str:
    result = hivectl(*args, env=dict(hived.env), timeout=timeout)
    assert result.returncode == code, f"hivectl {' '.join(args)}: {result.returncode}\n{result.stderr}"
    return result.stdout


def run_json(hived: Hived, *args: str, code: int = 0) -> dict:
    return json.loads(cli(hived, "workflow", "run", *args, "--wait", "-o", "json", code=code))


def steps(run: dict) -> dict[str, dict]:
    return {s["id"]: s for s in run["steps"]}


def test_code_review_example(hived: Hived) -> None:
    strict = run_json(hived, str(EXAMPLES / "code-review.yaml"))
    s = steps(strict)
    assert strict["status"] == "succeeded"
    assert s["security"]["result"]["count"] == 1  # the eval() in sample-project/calc.py
    assert "eval" in s["security"]["result"]["findings"][0]["message"]
    assert s["docs"]["result"]["count"] == 2  # divide() and parse_number() have no docstring
    assert s["verdict"]["result"]["verdict"] == "changes requested"
    assert s["merge"]["status"] == "skipped"
    agents = {s[k]["agent_id"] for k in ("style", "security", "docs")}
    assert len(agents) == 3  # the three reviews ran on the three reviewer replicas
    lenient = run_json(hived, "code-review", "-p", "max_findings=10")
    assert steps(lenient)["merge"]["result"] == {"merged": True, "findings": 3}
    assert lenient["params"]["max_findings"] == 10


def test_test_matrix_example(hived: Hived) -> None:
    done = run_json(hived, str(EXAMPLES / "test-matrix.yaml"))
    s = steps(done)
    assert done["status"] == "succeeded"
    assert s["report"]["result"] == {"tests": 5, "failed": 0, "ok": True, "modules": 2}
    assert [r["module"] for r in s["tests"]["result"]] == ["test_calc", "test_text"]  # in order
    assert done["outputs"] == {"report": s["report"]["result"]}
    items = hived.api("GET", "/tasks", params={"run": done["id"], "type": "unittest"})["items"]
    assert sorted(t["labels"]["hive/item"] for t in items) == ["0", "1"]  # one task per module
    table = cli(hived, "workflow", "status", done["id"][:8])
    assert "report" in table and "succeeded" in table


def test_test_matrix_reports_a_failing_module(hived: Hived, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    for name in ("calc.py", "text.py", "tests/test_calc.py"):
        (project / name).write_text((EXAMPLES / "sample-project" / name).read_text())
    (project / "tests/test_text.py").write_text(
        "import unittest\n\n\nclass T(unittest.TestCase):\n"
        "    def test_no(self):\n        self.assertEqual(1, 2)\n"
    )
    done = run_json(hived, str(EXAMPLES / "test-matrix.yaml"), "-p", f"project={project}", code=1)
    s = steps(done)
    assert s["tests"]["status"] == "failed" and s["tests"]["error"].startswith("1 of 2 items failed")
    assert s["tests"]["result"][0]["ok"] is True  # test_calc passed
    assert s["report"]["status"] == "failed" and "success_when" in s["report"]["error"]
    assert done["error"].startswith("step 'report' failed")
    assert done["status"] == "failed"


def test_deploy_with_rollback_example(hived: Hived, tmp_path: Path) -> None:
    target = tmp_path / "site"
    example = str(EXAMPLES / "deploy-rollback.yaml")
    missing = hivectl("workflow", "run", example, env=dict(hived.env))
    assert missing.returncode == 1 and "param 'version' is required" in one_error_line(missing)
    first = run_json(hived, example, "-p", "version=v1", "-p", f"target={target}")
    assert first["status"] == "succeeded" and steps(first)["announce"]["status"] == "succeeded"
    assert steps(first)["rollback"]["status"] == "skipped"
    bad = run_json(
        hived, "deploy-rollback", "-p", "version=v2", "-p", "healthy=false", "-p", f"target={target}"
    )
    s = steps(bad)
    assert s["smoke"]["status"] == "failed" and "health is 'broken'" in s["smoke"]["error"]
    assert s["rollback"]["status"] == "succeeded" and s["announce"]["status"] == "skipped"
    assert os.readlink(target / "current") == str(target / "releases" / "v1")


def test_approval_gated_release_example(hived: Hived, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_id = cli(
        hived,
        "workflow",
        "run",
        str(EXAMPLES / "release-approval.yaml"),
        "-p",
        "version=2.0.0",
        "-p",
        f"dir={out}",
    ).strip()
    wait_for(
        lambda: (
            steps(json.loads(cli(hived, "workflow", "status", run_id, "-o", "json")))["go"]["status"]
            == "waiting"
        ),
        timeout=60,
        what="the release gate",
    )
    notes = json.loads(cli(hived, "workflow", "context", run_id, "notes", "-o", "json"))
    assert notes["version"] == 2  # two writers, compare-and-set: both sections kept
    assert sorted(section["title"] for section in notes["value"]) == ["Features", "Fixes"]
    conflict = hivectl(
        "workflow", "context", run_id, "notes", "--set", "[]", "--expect-version", "1", env=dict(hived.env)
    )
    assert conflict.returncode == 1 and "is at version 2" in one_error_line(conflict)
    cli(hived, "workflow", "approve", run_id[:8], "go", "--comment", "ship it")
    done = json.loads(cli(hived, "workflow", "status", run_id, "--watch", "-o", "json"))
    assert done["status"] == "succeeded"
    release = (out / "RELEASE-2.0.0.md").read_text()
    assert "## Features" in release and "- no step runs twice after a crash" in release
    again = hivectl("workflow", "approve", run_id, "go", env=dict(hived.env))
    assert again.returncode == 1 and "has finished" in one_error_line(again)


def test_list_show_runs_and_cancel(hived: Hived, tmp_path: Path) -> None:
    path = tmp_path / "slow.yaml"
    path.write_text(
        "kind: Agent\nname: sleeper\nhandler: {python: 'hivectl.agent.builtin:act'}\n---\n"
        "kind: Workflow\nname: slow\nparams: {secs: 60}\n"
        "steps:\n  - id: nap\n    type: t\n    payload: {sleep: '${{ params.secs }}'}\n"
    )
    assert "workflow/slow created (version 1)" in cli(hived, "apply", "-f", str(path))
    assert "workflow/slow unchanged (version 1)" in cli(hived, "workflow", "apply", str(path))
    assert "slow" in cli(hived, "workflow", "list")
    shown = json.loads(cli(hived, "workflow", "show", "slow", "-o", "json"))
    assert shown["params"] == {"secs": 60} and shown["steps"][0]["id"] == "nap"
    run_id = cli(hived, "workflow", "run", "slow").strip()
    wait_for(lambda: steps(hived.api("GET", f"/runs/{run_id}"))["nap"]["status"] == "running")
    assert run_id[:8] in cli(hived, "workflow", "runs", "--status", "running")
    assert f"run/{run_id} cancelled" in cli(hived, "workflow", "cancel", run_id[:8])
    watched = hivectl("workflow", "status", run_id, "--watch", "-o", "json", env=dict(hived.env))
    assert watched.returncode == 1 and json.loads(watched.stdout)["status"] == "cancelled"
    bad = hivectl("workflow", "run", "slow", "-p", "secs", env=dict(hived.env))
    assert bad.returncode == 2 and "expected key=value" in one_error_line(bad)
