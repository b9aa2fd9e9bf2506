"""workflows-examples/parallel-fixes.yaml end to end: three fixes in parallel worktrees (one branch
each), merged in a final step on a `tty: true` agent that asks first (the task waits in
`waiting_input` until `hivectl task send ID y`), checked on the same agent and branch (affinity);
the stand-in coding agent's `--ask` prompt; `affinity` naming an unknown step refused with
FILE:LINE. Real git, hived, hive-agent, tmux and hivectl."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli_offline import HIVECTL, clean_env, hivectl
from tests.e2e.test_cli_workflows import EXAMPLES, cli, steps
from tests.helpers import Hived, wait_for


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def example_in(folder: Path) -> Path:
    """The example as it runs from its own folder: the YAML, its agents, and a fresh demo-repo."""
    shutil.copy(EXAMPLES / "parallel-fixes.yaml", folder / "parallel-fixes.yaml")
    (folder / "agents").symlink_to(EXAMPLES / "agents")
    subprocess.run(
        [sys.executable, str(EXAMPLES / "agents" / "demo_repo.py"), str(folder / "demo-repo")], check=True
    )
    return folder / "parallel-fixes.yaml"


def waiting_merge(hived: Hived) -> dict[str, Any] | None:
    items = hived.api("GET", "/tasks", params={"type": "merge", "status": "waiting_input"})["items"]
    return items[0] if items else None


def prompts(hived: Hived, task_id: str) -> list[str]:
    """The prompts the task waited at (its `task.waiting_input` events)."""
    lines = hived.client.get("/events", params={"since": 0, "follow": "false"}, timeout=10).text.splitlines()
    events = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
    return [
        e["prompt"] for e in events if e.get("kind") == "task.waiting_input" and e.get("task_id") == task_id
    ]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (the merger is tty: true)")
def test_parallel_fixes_merge_after_an_answer_and_check_on_the_same_branch(
    hived: Hived, tmp_path: Path
) -> None:
    repo = tmp_path / "demo-repo"
    run = subprocess.Popen(  # `workflow run --wait` as a person runs it; it ends once the merge is answered
        [*HIVECTL, "workflow", "run", str(example_in(tmp_path)), "--wait", "-o", "json"],
        env=dict(hived.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        merge = wait_for(lambda: waiting_merge(hived), 120, what="the merge at its prompt (waiting_input)")
        branch = f"hive/{merge['id']}"
        assert prompts(hived, merge["id"]) == [f"Merge 3 branch(es) into {branch}? [y/n]"]
        assert git(repo, "log", "--oneline", f"main..{branch}") == ""  # it asked first: nothing merged yet
        sent = cli(hived, "task", "send", merge["id"][:8], "y")
        assert f"task/{merge['id']}: sent 1 character(s)" in sent
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, err
    done = json.loads(out)
    s = steps(done)
    assert done["status"] == "succeeded", done
    assert s["merge"]["task_id"] == merge["id"]
    assert s["merge"]["agent_id"] == hived.api("GET", "/agents/merger")["id"]  # the tty: true agent
    assert f"Merge 3 branch(es) into {branch}? [y/n] y" in hived.api("GET", f"/tasks/{merge['id']}/logs")
    fixes = s["fix"]["result"]
    assert sorted(f["file"] for f in fixes) == ["alpha.py", "beta.py", "gamma.py"]
    branches = [f["branch"] for f in fixes]
    assert len(set(branches)) == 3 and all(b.startswith("hive/") for b in branches)
    for fix in fixes:  # each branch changed only its own file
        changed = git(repo, "diff", "--name-only", f"main...{fix['branch']}").split()
        assert changed == [fix["file"]]
    merge_task = s["merge"]["task_id"]
    assert s["merge"]["result"]["branch"] == f"hive/{merge_task}"
    assert done["outputs"] == {"merged": branches, "branch": f"hive/{merge_task}"}
    assert s["check"]["agent_id"] == s["merge"]["agent_id"]  # affinity: the same agent, same branch
    assert s["check"]["result"]["head"] == s["merge"]["result"]["head"]
    assert git(repo, "show", f"hive/{merge_task}:alpha.py").count("TODO") == 0
    assert git(repo, "show", "main:alpha.py").count("TODO") == 2  # main untouched
    diff = json.loads(cli(hived, "task", "diff", merge_task, "-o", "json"))
    assert (
        diff["diff"] == git(repo, "diff", f"main...hive/{merge_task}")
        and diff["diff"].count("+    return x  # DONE") == 3
    )
    report = cli(hived, "task", "artifact", s["check"]["task_id"], "check.txt")
    assert report == "alpha.py: 0 TODO\nbeta.py: 0 TODO\ngamma.py: 0 TODO\n"
    for agent in ("coder", "merger"):
        assert not list((hived.state_dir / "agents" / agent / "workspaces" / "worktrees").iterdir())


def test_the_stand_in_asks_before_working_with_ask(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLES / "agents" / "demo_repo.py"), str(tmp_path / "r")], check=True
    )
    payload = json.dumps({"action": "check"})
    coder = [sys.executable, str(EXAMPLES / "agents" / "coder.py"), "--ask"]
    env = {**clean_env(), "HIVE_ARTIFACTS": str(tmp_path), "HIVE_WORKSPACE_BRANCH": "main"}
    said_no = subprocess.run(
        coder, input=payload + "\n", cwd=tmp_path / "r", env=env, capture_output=True, text=True
    )
    assert said_no.stdout.startswith("Proceed? [y/n] ") and '"declined": true' in said_no.stdout
    said_yes = subprocess.run(
        coder, input=payload + "\ny\n", cwd=tmp_path / "r", env=env, capture_output=True, text=True
    )
    assert said_yes.returncode == 1 and "6 TODO(s) left" in said_yes.stderr  # it went on: the check ran
    only_merges = [*coder[:-1], "--ask=merge"]
    unasked = subprocess.run(
        only_merges, input=payload + "\n", cwd=tmp_path / "r", env=env, capture_output=True, text=True
    )
    assert unasked.returncode == 1 and unasked.stdout == ""  # a check: no question, it ran
    merge = json.dumps({"action": "merge", "branches": ["main", "main"]})
    declined = subprocess.run(
        only_merges, input=merge + "\nn\n", cwd=tmp_path / "r", env=env, capture_output=True, text=True
    )
    assert declined.stdout == 'Merge 2 branch(es) into main? [y/n] {"declined": true, "answer": "n"}\n'


def test_affinity_to_an_unknown_step_is_refused_with_file_and_line(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "kind: Workflow\nname: wf\nsteps:\n  - {id: a, type: t}\n"
        "  - id: b\n    type: t\n    needs: [a]\n    affinity: ghost\n"
    )
    out = hivectl("workflow", "validate", str(wf), env=clean_env(HIVE_SOCKET=str(tmp_path / "none.sock")))
    assert out.returncode != 0
    assert "wf.yaml:8: steps[1].affinity: step 'b': affinity names unknown step 'ghost'" in out.stderr
    wf.write_text(
        "kind: Workflow\nname: wf\nsteps:\n  - {id: a, type: t}\n  - {id: b, type: t, affinity: a}\n"
    )
    out = hivectl("workflow", "validate", str(wf), env=clean_env(HIVE_SOCKET=str(tmp_path / "none.sock")))
    assert "steps[1].affinity: step 'b': affinity step 'a' must be among its needs" in out.stderr
