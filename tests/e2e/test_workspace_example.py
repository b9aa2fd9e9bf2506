"""workflows-examples/parallel-fixes.yaml end to end: three fixes in parallel worktrees (one branch
each), merged in a final step, checked on the same agent and branch (affinity); the stand-in coding
agent's `--ask` prompt; `affinity` naming an unknown step refused with FILE:LINE. Real git, hived,
hive-agent and hivectl."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_cli_offline import clean_env, hivectl
from tests.e2e.test_cli_workflows import EXAMPLES, cli, run_json, steps
from tests.helpers import Hived


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


def test_parallel_fixes_merge_and_check_on_the_same_branch(hived: Hived, tmp_path: Path) -> None:
    done = run_json(hived, str(example_in(tmp_path)))
    repo = tmp_path / "demo-repo"
    s = steps(done)
    assert done["status"] == "succeeded", done
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
    assert not list((hived.state_dir / "agents" / "coder" / "workspaces" / "worktrees").iterdir())


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
