"""A scripted stand-in for a CLI coding agent, run in its task's git worktree ($HIVE_WORKSPACE, the
working directory). No network, no model: it edits files the way a coding agent would and commits.

Payload `action`:
- `fix` (`file`): replaces every `TODO` line of the file with a fix, commits it; result: the file,
  the branch and the commit;
- `merge` (`branches`, or `fixes`: the results of fix tasks): merges those branches into this task's
  branch, one merge commit each; result: the branches merged and the head;
- `check`: counts the `TODO`s left in *.py files, writes a report to $HIVE_ARTIFACTS; fails if any.

`--ask`: before working, ask at a prompt and read the answer from stdin: `Merge 3 branch(es) into
hive/<id>? [y/n] ` before a merge, `Proceed? [y/n] ` before anything else; `--ask=merge` (actions,
comma-separated) asks only before those. Any answer but `y`/`yes` (end of input is `n`) declines:
the result is `{"declined": true, "answer": ...}`, nothing done. Run by a `tty: true` handler, the
payload is the file `$HIVE_PAYLOAD` and stdin is the terminal a person (or `hivectl task send`)
answers in; otherwise the payload is the first line of stdin (one line of JSON), the answer the next.
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


def branches_of(payload: dict) -> list[str]:
    return payload.get("branches") or [fix["branch"] for fix in payload.get("fixes", [])]


def merge(payload: dict) -> dict:
    branches = branches_of(payload)
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


def question(payload: dict) -> str:
    if payload["action"] == "merge":
        into = os.environ.get("HIVE_WORKSPACE_BRANCH", "this branch")
        return f"Merge {len(branches_of(payload))} branch(es) into {into}? [y/n] "
    return "Proceed? [y/n] "


def asks_before(argv: list[str]) -> set[str] | None:
    """The actions to ask before: every one for `--ask`, the named ones for `--ask=merge,check`."""
    for arg in argv:
        if arg == "--ask":
            return {"fix", "merge", "check"}
        if arg.startswith("--ask="):
            return set(arg.partition("=")[2].split(","))
    return None


def main() -> None:
    ask = asks_before(sys.argv[1:])
    if "HIVE_PAYLOAD" in os.environ:  # a `tty: true` handler: stdin is the terminal
        payload = json.loads(Path(os.environ["HIVE_PAYLOAD"]).read_text())
    elif ask is not None:
        payload = json.loads(sys.stdin.readline() or "{}")
    else:
        payload = json.load(sys.stdin)
    if ask is not None and payload["action"] in ask:
        print(question(payload), end="", flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print(json.dumps({"declined": True, "answer": answer}))
            return
    action = {"fix": fix, "merge": merge, "check": check}[payload["action"]]
    print(json.dumps(action(payload)))


if __name__ == "__main__":
    main()
