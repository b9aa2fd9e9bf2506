"""The coordinator agent (exec handler) of the code-review example.

collect: the Python files under `path` (tests excluded) -> {root, files}
summarize: the reviewers' results -> {findings, by_check, verdict}
merge: what a merge bot would do; here it records the decision -> {merged: true}"""

import json
import sys
from pathlib import Path

payload = json.load(sys.stdin)
action = payload["action"]
if action == "collect":
    root = Path(payload["path"]).resolve()
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if "tests" not in p.parts)
    print(json.dumps({"root": str(root), "files": files}))
elif action == "summarize":
    by_check = {r["check"]: r["count"] for r in payload["reviews"]}
    total = sum(by_check.values())
    verdict = "approve" if total <= payload["max_findings"] else "changes requested"
    print(json.dumps({"findings": total, "by_check": by_check, "verdict": verdict}))
elif action == "merge":
    print(json.dumps({"merged": True, "findings": payload.get("findings", 0)}))
else:
    sys.exit(f"unknown action {action!r}")
