"""hive-agent's workspaces against real git, without hived: worktrees per attempt, the report, keep
and its cap, the sweep after a crash, a repository given by URL; and the pure rules next to them
(artifact names, the `workspace:` field, affinity)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from hivectl.agent.attempt_dirs import in_workdir
from hivectl.agent.workspace import Workspaces
from hived.model.affinity import affinity_errors
from hived.model.workspaces import WorkspaceSpec, artifact_name_problem


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "a.txt").write_text("a\n")
    git(path, "add", ".")
    git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return path


def spaces(repo: Path | str, tmp_path: Path, **kw: object) -> Workspaces:
    return Workspaces.from_json({"git": str(repo), "base": "main", **kw}, tmp_path / "ws")


async def test_open_close_report_and_keep_rules(repo: Path, tmp_path: Path) -> None:
    ws = spaces(repo, tmp_path, keep="never")
    slot = await ws.open("t1", 1)
    assert slot.branch == "hive/t1" and (slot.path / "a.txt").exists()
    (slot.path / "b.txt").write_text("b\n")
    report = await ws.close(slot, ok=True)
    assert report["diff"] == git(repo, "diff", "main...hive/t1") and "+b" in report["diff"]
    assert report["commits"][0]["subject"] == "hive: uncommitted changes of task t1, attempt 1"
    assert not slot.path.exists() and report["branch_kept"] is True
    empty = await ws.open("t2", 1)
    assert (await ws.close(empty, ok=True))["branch_kept"] is False
    assert git(repo, "branch", "--list", "hive/t2") == ""  # no commits: no branch left


async def test_failed_attempts_are_kept_up_to_the_cap_and_move_their_branch_aside(
    repo: Path, tmp_path: Path
) -> None:
    ws = spaces(repo, tmp_path, keep="on_failure", max_kept=1)
    first = await ws.open("t", 1)
    (first.path / "x").write_text("1")
    assert (await ws.close(first, ok=False))["branch"] == "hive/t-attempt-1"
    second = await ws.open("t", 2)
    assert second.branch == "hive/t" and not (second.path / "x").exists()  # fresh, from main
    (second.path / "y").write_text("2")
    report = await ws.close(second, ok=False)
    assert report["worktree"] == str(second.path) and report["branch"] == "hive/t-attempt-2"
    assert not first.path.exists() and second.path.exists()  # the cap: the oldest went
    assert git(repo, "branch", "--list", "hive/t-attempt-1").strip()  # its work stays on its branch


async def test_the_sweep_removes_what_a_crash_left_but_not_what_keep_asked_for(
    repo: Path, tmp_path: Path
) -> None:
    ws = spaces(repo, tmp_path, keep="always")
    kept = await ws.open("k", 1)
    await ws.close(kept, ok=True)
    crashed = await ws.open("c", 1)  # never closed: the agent was killed
    (crashed.path / "lost").write_text("uncommitted")
    again = spaces(repo, tmp_path, keep="always")  # the next agent process
    assert await again.sweep() == ["c-1"]
    assert kept.path.exists() and not crashed.path.exists()
    assert git(repo, "branch", "--list", "hive/c") == ""
    assert git(repo, "worktree", "list").count("\n") == 2  # the checkout and the kept one


async def test_a_repository_by_url_is_cloned_once_and_fetched(repo: Path, tmp_path: Path) -> None:
    ws = spaces(f"file://{repo}", tmp_path)
    slot = await ws.open("u", 1)
    assert ws.remote and (ws.repo / "HEAD").exists()
    (slot.path / "u.txt").write_text("u\n")
    report = await ws.close(slot, ok=True)
    assert "+u" in report["diff"] and git(ws.repo, "branch", "--list", "hive/u").strip()


async def test_an_affinity_attempt_continues_on_the_given_branch(repo: Path, tmp_path: Path) -> None:
    ws = spaces(repo, tmp_path)
    slot = await ws.open("src", 1)
    (slot.path / "s").write_text("s")
    await ws.close(slot, ok=True)
    follow = await ws.open("next", 1, branch_from="hive/src")
    assert follow.branch == "hive/src" and not follow.own and (follow.path / "s").exists()
    assert (await ws.close(follow, ok=True))["branch_kept"] is True


def test_artifact_names() -> None:
    for good in ("a.txt", "sub/dir/b.json", "report..txt"):
        assert artifact_name_problem(good) is None, good
    for bad in ("../x", "a/../../x", "/etc/passwd", "./x", "a//b", "", "C:\\x", "a\\b", "x\n"):
        assert artifact_name_problem(bad) is not None, bad


def test_the_workspace_field() -> None:
    assert WorkspaceSpec.model_validate({"git": "/r"}).keep == "on_failure"
    for bad, where in [
        ({"git": "/r", "base": "a..b"}, "base"),
        ({"git": "-x"}, "git"),
        ({"git": "/r", "keep": "x"}, "keep"),
    ]:
        with pytest.raises(ValidationError, match=where):
            WorkspaceSpec.model_validate(bad)


def test_affinity_rules() -> None:
    steps = [
        {"id": "a"},
        {"id": "b", "needs": ["a"], "affinity": "a"},
        {"id": "c", "needs": ["a"], "affinity": "zz"},
        {"id": "d", "affinity": "a"},
        {"id": "e", "for_each": [1], "needs": ["a"], "affinity": "a"},
    ]
    errors = {e.path[1]: e.message for e in affinity_errors(steps)}
    assert sorted(errors) == [2, 3, 4]
    assert "unknown step 'zz'" in errors[2] and "must be among its needs" in errors[3]
    assert "for_each" in errors[4]


def test_exec_arguments_in_the_workdir_are_made_absolute(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "x.py").write_text("")
    assert in_workdir("agents/x.py", str(tmp_path)) == str(tmp_path / "agents" / "x.py")
    assert in_workdir("python3", str(tmp_path)) == "python3"
    assert in_workdir("--flag", str(tmp_path)) == "--flag"
