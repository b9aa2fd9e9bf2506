"""A scripted stand-in for a CLI coding agent, run in its task's git worktree ($HIVE_WORKSPACE, the
working directory). No network, no model: it edits files the way a coding agent would and commits.

Payload `action`:
- `fix` (`file`): replaces every `TODO` line of the file with a fix, commits it; result: the file,
  the branch and the commit;
- `merge` (`branches`, or `fixes`: the results of fix tasks): merges those branches into this task's
  branch, one merge commit each; result: the branches merged and the head;
- `check`: counts the `TODO`s left in *.py files, writes a report to $HIVE_ARTIFACTS; fails if any.

`--ask`: before working, print `Proceed? [y/n] ` and read the answer from stdin. The payload is then
the first line of stdin (one line of JSON), the answer the next; no answer (end of input) is `n`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

WHO = ["-c", "user.name=coder", "-c", "user.email=coder@example.invalid"]


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout.strip()


def fix(payload: dict) -> dict:
    path = Path(payload["file"])
    lines = path.read_text().splitlines(keepends=True)
    fixed = [line.replace("TODO", "DONE") if "TODO" in line else line for line in lines]
    path.write_text("".join(fixed))
    git("add", str(path))
    git(*WHO, "commit", "-q", "-m", f"fix the TODOs of {path}")
    return {
        "file": str(path),
        "branch": os.environ["HIVE_WORKSPACE_BRANCH"],
        "commit": git("rev-parse", "HEAD"),
    }


def merge(payload: dict) -> dict:
    branches = payload.get("branches") or [fix["branch"] for fix in payload.get("fixes", [])]
    for branch in branches:
        git(*WHO, "merge", "-q", "--no-ff", "-m", f"merge {branch}", branch)
    return {
        "merged": branches,
        "branch": os.environ["HIVE_WORKSPACE_BRANCH"],
        "head": git("rev-parse", "HEAD"),
    }


def check(_payload: dict) -> dict:
    todos = {str(p): p.read_text().count("TODO") for p in sorted(Path(".").glob("*.py"))}
    left = sum(todos.values())
    report = Path(os.environ["HIVE_ARTIFACTS"]) / "check.txt"
    report.write_text("".join(f"{name}: {count} TODO\n" for name, count in todos.items()))
    if left:
        print(f"{left} TODO(s) left", file=sys.stderr)
        sys.exit(1)
    return {
        "todos": 0,
        "files": len(todos),
        "branch": os.environ["HIVE_WORKSPACE_BRANCH"],
        "head": git("rev-parse", "HEAD"),
    }


def main() -> None:
    if "--ask" in sys.argv[1:]:
        payload = json.loads(sys.stdin.readline() or "{}")
        print("Proceed? [y/n] ", end="", flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print(json.dumps({"declined": True, "answer": answer}))
            return
    else:
        payload = json.load(sys.stdin)
    action = {"fix": fix, "merge": merge, "check": check}[payload["action"]]
    print(json.dumps(action(payload)))


if __name__ == "__main__":
    main()
