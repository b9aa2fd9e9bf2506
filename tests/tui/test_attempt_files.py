"""The TUI's task view shows what an attempt left: its workspace's branch and changed files, and its
artifacts. A real hived, a real agent with a git workspace, the app driven by Pilot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import Hived
from tests.tui.test_app import app_for, cell, screen_text, select, until

HANDLER = r"""
import json, os, pathlib, sys
json.load(sys.stdin)
pathlib.Path("fixed.txt").write_text("fixed\n")
(pathlib.Path(os.environ["HIVE_ARTIFACTS"]) / "summary.md").write_text("# done\n")
print(json.dumps({"ok": True}))
"""


def make_repo(repo: Path) -> None:
    repo.mkdir()
    for args in (
        ["init", "-q", "-b", "main"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True)


async def test_the_task_view_shows_the_workspace_and_the_artifacts(hived: Hived, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    script = tmp_path / "handler.py"
    script.write_text(HANDLER)
    hived.spawn("coder", {"exec": [sys.executable, str(script)]}, workspace={"git": str(repo)})
    task = hived.submit("fix")
    assert hived.wait_task(task["id"])["status"] == "completed"
    app = app_for(hived)
    async with app.run_test(size=(150, 120)) as pilot:
        await pilot.press("2")
        await until(
            pilot, lambda: cell(app, "tasks-table", task["id"], "status") == "completed", what="task row"
        )
        await select(pilot, app, "tasks-table", task["id"])
        await pilot.press("l")
        await until(pilot, lambda: app.screen.__class__.__name__ == "DetailScreen", what="task details")
        text = screen_text(app)
        assert f"branch hive/{task['id']} (attempt 1), 1 commit(s) on main" in text
        assert "  fixed.txt" in text and "artifacts" in text and "summary.md" in text
