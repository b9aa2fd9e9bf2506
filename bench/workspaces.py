"""What a workspace costs an attempt: `git worktree add` before, and after it the commit of what was
left, the report (log, diff) and `git worktree remove`, on a repository of N files (real git, no hived).
    .venv/bin/python bench/workspaces.py [--files 2000] [--attempts 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from hivectl.agent.workspace import Workspaces


def make_repo(path: Path, files: int) -> None:
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
    for n in range(files):
        (path / f"f{n:05}.py").write_text(f"x = {n}\n" * 20)
    subprocess.run(["git", "add", "."], cwd=path, check=True)
    who = ["-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run(["git", *who, "commit", "-qm", "init"], cwd=path, check=True)


async def main(files: int, attempts: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        make_repo(repo, files)
        ws = Workspaces.from_json({"git": str(repo), "keep": "never"}, Path(tmp) / "ws")
        opens, closes = [], []
        for n in range(attempts):
            started = time.perf_counter()
            slot = await ws.open(f"t{n}", 1)
            opened = time.perf_counter()
            (slot.path / "f00000.py").write_text("changed\n")
            await ws.close(slot, ok=True)
            opens.append(opened - started)
            closes.append(time.perf_counter() - opened)
        for what, values in (("open (worktree add)", opens), ("close (commit, diff, remove)", closes)):
            median, top = statistics.median(values) * 1000, max(values) * 1000
            print(f"{what:30} median {median:7.1f} ms  max {top:7.1f} ms")
        print(f"({attempts} attempts, a repository of {files} files)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--attempts", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.files, args.attempts))
