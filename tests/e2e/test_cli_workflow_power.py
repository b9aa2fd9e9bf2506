"""for_each, sub-workflows and reruns as a user runs them: offline validation of the new fields with
FILE:LINE, the examples run end to end on a real hived (sub-workflow.yaml, rerun.yaml; test-matrix.yaml
in test_cli_workflows.py), a fan-out bounded by max_parallel on real agents, and a cycle through
sub-workflows refused at apply."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.test_cli_offline import clean_env, hivectl, one_error_line
from tests.e2e.test_cli_workflows import EXAMPLES, check_invalid, cli, run_json, steps
from tests.helpers import Hived, wait_for


@pytest.fixture
def offline(tmp_path: Path) -> dict[str, str]:
    return clean_env(HIVE_STATE_DIR=str(tmp_path / "state"), HIVE_SOCKET=str(tmp_path / "none.sock"))


HEAD = "kind: Workflow\nname: wf\n"
ACT_AGENT = "kind: Agent\nname: actor\nmax_concurrency: 20\nhandler: {python: 'hivectl.agent.builtin:act'}\n"
CHILD = "---\nkind: Workflow\nname: child\nparams: {path: null}\nsteps:\n  - {id: x, type: t}\n"
INVALID = [
    (
        HEAD + "steps:\n  - id: a\n    type: t\n    for_each: 'files'\n",
        'wf.yaml:6: steps[0].for_each: for_each must be one "${{ expression }}" that gives a list, or a list',
    ),
    (
        HEAD + "steps:\n  - id: a\n    type: t\n    for_each: [1, 2]\n    max_parallel: lots\n",
        "wf.yaml:7: steps[0].max_parallel: Input should be a valid integer",
    ),
    (
        HEAD + "steps:\n  - id: a\n    type: t\n    max_parallel: 2\n",
        "wf.yaml:4: steps[0]: max_parallel needs for_each",
    ),
    (
        HEAD + "steps:\n  - id: a\n    type: t\n    payload: {f: '${{ item }}'}\n",
        "wf.yaml:6: steps[0].payload.f: step 'a' uses item or index, which only a step with for_each has",
    ),
    (
        HEAD + "steps:\n  - {id: a, type: t}\n  - {id: b, type: t, for_each: '${{ steps.a.result }}'}\n",
        "wf.yaml:5: steps[1].for_each: step 'b' uses steps.a but does not need it",
    ),
    (
        HEAD + "steps:\n  - id: a\n    workflow: child\n    payload: {x: 1}\n",
        "wf.yaml:4: steps[0]: a workflow: step runs a sub-workflow, not a task: no payload",
    ),
    (
        HEAD + "steps:\n  - id: a\n    workflow: Child!\n",
        "wf.yaml:5: steps[0].workflow: must be a workflow name",
    ),
    (
        HEAD + "steps:\n  - id: a\n    workflow: child\n    params: {nope: 1}\n" + CHILD,
        "wf.yaml:6: steps[0].params: workflow 'child' has no param 'nope' (its params: path)",
    ),
    (
        HEAD + "steps:\n  - id: a\n    workflow: child\n" + CHILD,
        "wf.yaml:4: steps[0]: workflow 'child' needs param 'path' (it has no default)",
    ),
    (
        HEAD + "steps:\n  - {id: a, workflow: other}\n---\nkind: Workflow\nname: other\n"
        "steps:\n  - {id: b, workflow: wf}\n",
        "wf.yaml:4: steps[0].workflow: a cycle through sub-workflows: wf -> other -> wf",
    ),
    (
        HEAD + "steps:\n  - {id: a, type: t}\noutputs: {r: '${{ steps.zz.result }}'}\n",
        "wf.yaml:5: outputs.r: outputs use unknown step 'zz'",
    ),
]


def with_agent(tmp_path: Path, workflows: str) -> str:
    """A file of an agent running hivectl.agent.builtin:act (20 slots) and `workflows`."""
    path = tmp_path / "wf.yaml"
    path.write_text(ACT_AGENT + "---\n" + workflows)
    return str(path)


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[m.split(":", 2)[2][:40] for _, m in INVALID])
def test_validate_the_new_fields_with_file_line(
    offline: dict[str, str], tmp_path: Path, text: str, message: str
) -> None:
    check_invalid(offline, tmp_path, text, message)


def test_sub_workflow_example(hived: Hived) -> None:
    done = run_json(hived, str(EXAMPLES / "sub-workflow.yaml"), "-p", "version=2.1")
    assert done["status"] == "succeeded", done
    assert done["outputs"] == {"published": ["api-2.1.tar", "web-2.1.tar"]}
    api = steps(done)["api"]
    assert api["result"] == {"artifact": "api-2.1.tar"} and api["type"] == "workflow:build-one"
    child = api["child"]  # nested in -o json
    assert child["id"] == api["child_run_id"] and child["workflow"] == "build-one"
    assert (child["parent_run_id"], child["parent_step"]) == (done["id"], "api")
    assert [s["status"] for s in child["steps"]] == ["succeeded", "succeeded"]
    table = cli(hived, "workflow", "status", done["id"])
    assert f"run {api['child_run_id'][:8]} succeeded" in table
    assert "└ compile" in table and "└ check" in table  # the child's steps, under the step


def test_cancelling_a_parent_cancels_its_child(hived: Hived, tmp_path: Path) -> None:
    path = with_agent(
        tmp_path,
        "kind: Workflow\nname: nap\nsteps:\n  - {id: long, type: t, payload: {sleep: 60}}\n---\n"
        "kind: Workflow\nname: outer\nsteps:\n  - {id: inner, workflow: nap}\n",
    )
    run_id = cli(hived, "workflow", "run", path).strip()

    def child() -> dict | None:
        inner = steps(hived.api("GET", f"/runs/{run_id}"))["inner"]
        return inner["child"] if inner["child"] and inner["child"]["status"] == "running" else None

    wait_for(lambda: child() is not None, what="the child run")
    child_id = child()["id"]  # type: ignore[index]
    cli(hived, "workflow", "cancel", run_id)
    wait_for(lambda: hived.api("GET", f"/runs/{child_id}")["status"] == "cancelled", what="its cancel")


def test_a_cycle_through_sub_workflows_is_refused_at_apply(hived: Hived, tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    first.write_text("kind: Workflow\nname: a\nsteps:\n  - {id: s, type: t}\n")
    cli(hived, "workflow", "apply", str(first))
    second = tmp_path / "b.yaml"
    second.write_text("kind: Workflow\nname: b\nsteps:\n  - {id: s, workflow: a}\n")
    cli(hived, "workflow", "apply", str(second))
    first.write_text("kind: Workflow\nname: a\nsteps:\n  - {id: s, workflow: b}\n")
    refused = hivectl("workflow", "apply", str(first), env=dict(hived.env))
    assert refused.returncode == 1
    assert "steps[0].workflow: a cycle through sub-workflows: a -> b -> a" in one_error_line(refused)
    unknown = tmp_path / "c.yaml"
    unknown.write_text("kind: Workflow\nname: c\nsteps:\n  - {id: s, workflow: ghost}\n")
    refused = hivectl("workflow", "apply", str(unknown), env=dict(hived.env))
    assert refused.returncode == 1 and "unknown workflow 'ghost'" in one_error_line(refused)


def test_rerun_example_runs_only_the_failed_step_and_what_follows(hived: Hived, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    first = run_json(hived, str(EXAMPLES / "rerun.yaml"), "-p", f"ready_file={ready}", code=1)
    assert [s["status"] for s in first["steps"]] == ["succeeded", "failed", "skipped"]
    ready.touch()
    done = json.loads(cli(hived, "workflow", "rerun", first["id"][:8], "--wait", "-o", "json"))
    assert done["status"] == "succeeded" and done["rerun_of"] == first["id"]
    assert done["outputs"] == {"deployed": "app.tar"}
    tasks = hived.api("GET", "/tasks", params={"run": done["id"]})["items"]
    assert sorted(t["type"] for t in tasks) == ["check", "deploy"]  # build's result was reused
    assert steps(done)["build"]["task_id"] == steps(first)["build"]["task_id"]
    again = json.loads(cli(hived, "workflow", "rerun", done["id"], "--from", "build", "--wait", "-o", "json"))
    assert len(hived.api("GET", "/tasks", params={"run": again["id"]})["items"]) == 3
    bad = hivectl("workflow", "rerun", done["id"], "--from", "nope", env=dict(hived.env))
    assert bad.returncode != 0 and "has no step 'nope'" in one_error_line(bad)


def test_a_fan_out_on_real_agents_never_runs_more_than_max_parallel(hived: Hived, tmp_path: Path) -> None:
    path = with_agent(
        tmp_path,
        "kind: Workflow\nname: fan\nsteps:\n"
        "  - {id: list, type: list, payload: {result: {files: [a, b, c, d, e, f, g, h, i, j, k, l]}}}\n"
        "  - id: each\n    type: each\n    needs: [list]\n    for_each: '${{ steps.list.result.files }}'\n"
        "    max_parallel: 3\n    payload: {sleep: 0.3, result: {file: '${{ item }}', n: '${{ index }}'}}\n",
    )
    done = run_json(hived, path)
    assert done["status"] == "succeeded"
    assert steps(done)["each"]["result"] == [{"file": f, "n": i} for i, f in enumerate("abcdefghijkl")]
    tasks = hived.api("GET", "/tasks", params={"run": done["id"], "type": "each"})["items"]
    assert len(tasks) == 12
    at = datetime.fromisoformat
    spans = [(at(t["started_at"]), at(t["completed_at"])) for t in tasks]
    most = max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)
    assert 1 <= most <= 3
