"""Workspaces (issue 18): a fresh git worktree per attempt, its diff stored, worktrees swept after a
crash; bad `workspace:` input refused. Real git, a real hived and real hive-agent processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.helpers import Hived, wait_for

# Writes its file in its working directory, waits (files in `gate`) until `wait_for` tasks have
# started, then reports what it sees; fails attempts listed in `fail_on`, hangs on `hang_on`.
HANDLER = r"""
import json, os, sys, time, pathlib
p = json.load(sys.stdin)
attempt = int(os.environ["HIVE_ATTEMPT"])
here = pathlib.Path.cwd()
(here / p["file"]).write_text(f"{p['file']} attempt {attempt}\n")
gate = pathlib.Path(p["gate"])
(gate / f"{os.environ['HIVE_TASK_ID']}-{attempt}").write_text(str(here))
if p.get("commit"):
    import subprocess
    subprocess.run(["git", "add", p["file"]], check=True)
    who = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", *who, "commit", "-qm", "add " + p["file"]], check=True)
deadline = time.monotonic() + 20
while len(list(gate.iterdir())) < p.get("wait_for", 1) and time.monotonic() < deadline:
    time.sleep(0.02)
if attempt in p.get("hang_on", []):
    time.sleep(300)
seen = sorted(x.name for x in here.iterdir() if x.name != ".git")
print(json.dumps({"cwd": str(here), "workspace": os.environ["HIVE_WORKSPACE"],
                  "branch": os.environ["HIVE_WORKSPACE_BRANCH"], "seen": seen}))
sys.exit(1 if attempt in p.get("fail_on", []) else 0)
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def make_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README").write_text("hello\n")
    git(path, "add", "README")
    git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return path


def worktree_agent(hived: Hived, tmp_path: Path, name: str, repo: Path, **spec: object) -> Path:
    script = tmp_path / "handler.py"
    script.write_text(HANDLER)
    workspace = {"git": str(repo), "base": "main", **spec.pop("workspace", {})}  # type: ignore[dict-item]
    hived.spawn(name, {"exec": [sys.executable, str(script)]}, workspace=workspace, **spec)
    gate = tmp_path / "gate"
    gate.mkdir(exist_ok=True)
    return gate


def worktrees(hived: Hived, agent: str) -> list[str]:
    folder = hived.state_dir / "agents" / agent / "workspaces" / "worktrees"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_two_attempts_at_once_get_their_own_worktrees(hived: Hived, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    gate = worktree_agent(hived, tmp_path, "coder", repo, max_concurrency=2)
    ids = [
        hived.submit(
            "fix", payload={"file": f"f{n}.txt", "gate": str(gate), "wait_for": 2, "commit": n == 0}
        )["id"]
        for n in range(2)
    ]
    done = [hived.wait_task(i) for i in ids]
    assert [t["status"] for t in done] == ["completed", "completed"], done
    results = [t["result"] for t in done]
    assert results[0]["cwd"] != results[1]["cwd"]
    assert results[0]["seen"] == ["README", "f0.txt"] and results[1]["seen"] == ["README", "f1.txt"]
    for task_id, result in zip(ids, results, strict=True):
        assert result["branch"] == f"hive/{task_id}" and result["workspace"] == result["cwd"]
        diff = hived.api("GET", f"/tasks/{task_id}/diff")
        assert diff["attempt"] == 1 and diff["branch"] == f"hive/{task_id}"
        assert diff["diff"] == git(repo, "diff", f"main...hive/{task_id}") and "+f" in diff["diff"]
        assert len(diff["commits"]) == 1 and not diff["diff_truncated"] and diff["worktree"] is None
    # the handler's own commit, and hive's commit of what the other left uncommitted
    subjects = [hived.api("GET", f"/tasks/{i}/diff")["commits"][0]["subject"] for i in ids]
    assert subjects[0] == "add f0.txt" and subjects[1].startswith("hive: uncommitted changes")
    assert worktrees(hived, "coder") == []  # succeeded, keep: on_failure
    assert "worktree" not in git(repo, "worktree", "list").split("\n", 1)[-1]  # only the main one
    assert git(repo, "status", "--porcelain") == ""  # the checkout itself untouched


def test_a_retried_attempt_gets_a_new_worktree(hived: Hived, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    gate = worktree_agent(hived, tmp_path, "retrier", repo)
    payload = {"file": "x.txt", "gate": str(gate), "fail_on": [1]}
    task = hived.submit("fix", payload=payload, max_attempts=2, retry={"initial": "10ms"})
    done = hived.wait_task(task["id"])
    assert done["status"] == "completed" and done["attempts"] == 2
    first, second = (gate / f"{task['id']}-1").read_text(), (gate / f"{task['id']}-2").read_text()
    assert first != second and second == done["result"]["cwd"]
    assert worktrees(hived, "retrier") == [f"{task['id']}-1"]  # the failed one, kept (on_failure)
    one = hived.api("GET", f"/tasks/{task['id']}/diff", params={"attempt": 1})
    assert one["branch"] == f"hive/{task['id']}-attempt-1" and one["worktree"] == first
    assert one["diff"] == git(repo, "diff", f"main...hive/{task['id']}-attempt-1")
    two = hived.api("GET", f"/tasks/{task['id']}/diff")
    assert two["attempt"] == 2 and two["diff"] == git(repo, "diff", f"main...hive/{task['id']}")
    assert "attempt 2" in two["diff"] and "attempt 1" not in two["diff"]


def test_kill9_of_hived_and_agent_leaves_no_worktree_after_the_next_start(
    hived_factory: Callable[..., Hived], tmp_path: Path
) -> None:
    hived = hived_factory()
    repo = make_repo(tmp_path / "repo")
    gate = worktree_agent(hived, tmp_path, "crashy", repo, restart={"initial_delay": "100ms"})
    kept = hived.submit("fix", payload={"file": "k.txt", "gate": str(gate), "fail_on": [1]}, max_attempts=1)
    assert hived.wait_task(kept["id"])["status"] == "failed"
    task = hived.submit(
        "fix", payload={"file": "h.txt", "gate": str(gate), "hang_on": [1], "commit": True}, max_attempts=3
    )
    wait_for(lambda: (gate / f"{task['id']}-1").exists(), what="the first attempt running")
    assert f"{task['id']}-1" in worktrees(hived, "crashy")
    agents = hived.agent_pids()
    hived.kill9()
    for pid in agents:
        os.killpg(pid, signal.SIGKILL)
    hived.start()
    done = hived.wait_task(task["id"])
    assert done["status"] == "completed" and done["attempts"] == 2
    assert worktrees(hived, "crashy") == [f"{kept['id']}-1"]  # only the one keep asked for
    listed = git(repo, "worktree", "list", "--porcelain")
    assert listed.count("worktree ") == 2 and f"{kept['id']}-1" in listed
    # the crashed attempt had committed: its branch is moved aside, not lost
    assert git(repo, "branch", "--list", f"hive/{task['id']}-attempt-1").strip()


def test_a_bad_workspace_is_refused_and_nothing_is_stored(hived: Hived, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    repo = make_repo(tmp_path / "repo")
    handler = {"exec": ["true"]}
    cases = [
        ({"git": str(plain)}, "workspace.git: " + str(plain) + " is not a git repository"),
        ({"git": str(repo), "base": "nope"}, "workspace.base: 'nope' does not exist"),
        ({"git": str(tmp_path / "missing")}, "workspace.git:"),
        ({"git": str(repo), "keep": "sometimes"}, "workspace.keep"),
    ]
    python = {"python": "hivectl.agent.builtin:echo"}
    cases.append(({"git": str(repo), "handler": python}, "workspace: only an exec handler runs in a"))
    for n, (workspace, message) in enumerate(cases):
        body = {"name": f"bad{n}", "handler": workspace.pop("handler", handler), "workspace": workspace}
        resp = hived.client.post("/agents", json=body)
        assert resp.status_code == 422, resp.text
        assert message in resp.json()["detail"], resp.json()
        assert hived.client.get(f"/agents/bad{n}").status_code == 404
    assert not (hived.state_dir / "agents" / "bad0").exists()


def test_hivectl_task_diff(hived: Hived, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    gate = worktree_agent(hived, tmp_path, "differ", repo)
    task = hived.submit("fix", payload={"file": "d.txt", "gate": str(gate)})
    hived.wait_task(task["id"])
    env = {**hived.env}
    cli = [sys.executable, "-m", "hivectl.cli.main", "task", "diff", task["id"][:8]]
    out = subprocess.run(cli, env=env, capture_output=True, text=True, check=True).stdout
    assert out == git(repo, "diff", f"main...hive/{task['id']}")
    shown = json.loads(
        subprocess.run([*cli, "-o", "json"], env=env, capture_output=True, text=True, check=True).stdout
    )
    assert shown["branch"] == f"hive/{task['id']}" and shown["attempt"] == 1
    missing = subprocess.run([*cli, "--attempt", "5"], env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "no workspace recorded for attempt 5" in missing.stderr
