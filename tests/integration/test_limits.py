"""Limits end to end, on a real hived with real agents (SQLite and PostgreSQL): a Limit applied with
`hivectl apply`, tasks submitted with `hivectl task submit --limit`, run by exec agents; one repo at
a time, repos in parallel, a throttled attempt that does not spend the task's budget; and the bucket
and the closure still there after `kill -9` of hived."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tests.helpers import REPO, Hived, wait_for

# Records its run in a file per task; the first attempt of a task asked to throttle reports it.
WORKER = """
import json, os, sys, time
payload = json.load(sys.stdin)
attempt = int(os.environ["HIVE_ATTEMPT"])
if payload.get("throttle") and attempt == 1:
    print(json.dumps({"throttled": {"limit": "api", "retry_after": 1}}))
    sys.exit(75)
start = time.time()
time.sleep(0.3)
with open(os.path.join(payload["dir"], os.environ["HIVE_TASK_ID"]), "w") as f:
    json.dump({"repo": payload["repo"], "start": start, "end": time.time()}, f)
print(json.dumps({"repo": payload["repo"]}))
"""

LIMITS = """\
kind: Limit
name: repo
concurrency: 1
---
kind: Limit
name: api
rate: 50/s
"""


def hivectl(hived: Hived, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hivectl.cli.main", *args],
        env=hived.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_limits_end_to_end(hived_factory: Callable[..., Hived], db_url: str, tmp_path: Path) -> None:
    hived = hived_factory(db_url=db_url)
    (tmp_path / "limits.yaml").write_text(LIMITS)
    applied = hivectl(hived, "apply", "-f", str(tmp_path / "limits.yaml"))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == ["limit/repo created", "limit/api created"]
    (tmp_path / "worker.py").write_text(WORKER)
    for name in ("w1", "w2"):
        hived.spawn(name, {"exec": [sys.executable, str(tmp_path / "worker.py")]}, max_concurrency=3)
    runs = tmp_path / "runs"
    runs.mkdir()
    lines = []
    for repo in ["x", "x", "x", "y", "y", "z"]:  # one batch: they are queued together
        payload = {"repo": repo, "dir": str(runs), "throttle": repo == "z"}
        limits = [{"name": "repo", "key": "${{ payload.repo }}"}, {"name": "api"}]
        lines.append(json.dumps({"type": "job", "payload": payload, "max_attempts": 1, "limits": limits}))
    (tmp_path / "tasks.jsonl").write_text("\n".join(lines) + "\n")
    submitted = hivectl(hived, "task", "submit", "-f", str(tmp_path / "tasks.jsonl"))
    assert submitted.returncode == 0, submitted.stderr
    ids = submitted.stdout.split()
    payload = json.dumps({"repo": "w", "dir": str(runs)})
    one = hivectl(hived, "task", "submit", "job", "--payload", payload, "--limit", "repo:${{ payload.repo }}")
    assert one.returncode == 0, one.stderr
    ids.append(one.stdout.strip())
    for task_id in ids:
        assert hived.wait_task(task_id)["status"] == "completed", hived.task(task_id)

    spans: dict[str, list[tuple[float, float]]] = {}
    for task_id in ids:
        run = json.loads((runs / task_id).read_text())
        spans.setdefault(run["repo"], []).append((run["start"], run["end"]))
    for repo, repo_spans in spans.items():  # one task of a repo at a time
        repo_spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(repo_spans, repo_spans[1:], strict=False)), repo
    starts = {repo: min(s for s, _ in repo_spans) for repo, repo_spans in spans.items()}
    assert starts["y"] < min(e for _, e in spans["x"])  # repos ran in parallel

    throttled = hived.task(ids[5])  # z: throttled once, then completed with max_attempts 1
    reasons = [a["reason"] for a in throttled["attempt_history"]]
    assert reasons[0] == "throttled" and throttled["attempts"] == 2 and throttled["max_attempts"] == 1

    shown = hivectl(hived, "limit", "show", "api", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    api = json.loads(shown.stdout)
    assert (api["rate"], api["burst"], api["holders"], api["waiting"]) == ("50/s", 50, 0, 0)
    listed = hivectl(hived, "limit", "list")
    assert "repo" in listed.stdout and "api" in listed.stdout

    # kill -9: the definitions, the bucket's level and a closure are read back
    hived.api("PUT", "/limits/api", json={"name": "api", "rate": "1/h"})
    hived.kill9()
    hived.start()
    after = hived.api("GET", "/limits/api")
    assert after["rate"] == "1/h" and after["tokens"] is not None and after["tokens"] < 50
    refused = hived.api("POST", "/tasks", expect=422, json={"type": "job", "limits": [{"name": "nope"}]})
    assert refused["detail"].startswith("limits.0.name: unknown limit 'nope'")
    assert hived.api("GET", "/tasks")["total"] == len(ids)
    bad = hivectl(hived, "task", "submit", "job", "--limit", "api*-1")
    assert bad.returncode != 0 and "--limit" in bad.stderr


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_throttled_report_closes_the_limit_for_every_agent(hived: Hived, tmp_path: Path) -> None:
    hived.api("PUT", "/limits/api", json={"name": "api", "rate": "100/s"})
    (tmp_path / "worker.py").write_text(WORKER)
    for name in ("w1", "w2"):
        hived.spawn(name, {"exec": [sys.executable, str(tmp_path / "worker.py")]})
    runs = tmp_path / "runs"
    runs.mkdir()
    first = hived.submit(payload={"repo": "a", "dir": str(runs), "throttle": True}, limits=[{"name": "api"}])
    throttled = lambda: (t := hived.task(first["id"]))["attempt_history"] and t["status"] == "pending"  # noqa: E731
    wait_for(throttled, what="the first attempt throttled")
    closed = hived.api("GET", "/limits/api")["closed_until"]
    assert closed is not None
    other = hived.submit(payload={"repo": "b", "dir": str(runs)}, limits=[{"name": "api"}])
    done = [hived.wait_task(t["id"]) for t in (first, other)]
    assert all(t["status"] == "completed" for t in done)
    for task in done:  # no agent started either before the limit reopened
        started = [ts(a["started_at"]) for a in task["attempt_history"] if a["reason"] != "throttled"]
        assert min(started) >= ts(closed).replace(microsecond=0)


# Writes its pid, then runs for as long as its payload says.
SLEEPER = """
import json, os, sys, time
payload = json.load(sys.stdin)
with open(os.path.join(payload["dir"], os.environ["HIVE_TASK_ID"]), "w") as f:
    f.write(str(os.getpid()))
time.sleep(payload["seconds"])
print("{}")
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"  # ended, not reaped yet
    except FileNotFoundError:
        return True


def test_cancel_in_progress_stops_the_old_handler(hived: Hived, tmp_path: Path) -> None:
    limit = {"name": "deploy", "concurrency": 1, "strategy": "cancel_in_progress"}
    hived.api("PUT", "/limits/deploy", json=limit)
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    hived.spawn("w1", {"exec": [sys.executable, str(tmp_path / "sleeper.py")]}, max_concurrency=4)
    runs = tmp_path / "runs"
    runs.mkdir()
    refs = [{"name": "deploy", "key": "${{ payload.env }}"}]
    old = hived.submit(payload={"env": "prod", "dir": str(runs), "seconds": 120}, limits=refs)
    wait_for(lambda: (runs / old["id"]).exists(), what="the old task's handler started")
    pid = int((runs / old["id"]).read_text())
    refused = hivectl(hived, "limit", "delete", "deploy")
    assert refused.returncode != 0 and "limit 'deploy' is in use: 1 task(s) hold it" in refused.stderr
    new = hived.submit(payload={"env": "prod", "dir": str(runs), "seconds": 0}, limits=refs)
    cancelled = hived.task(old["id"])
    assert cancelled["status"] == "cancelled"
    why = f"cancelled: task {new['id']} took limit deploy[prod] (strategy cancel_in_progress)"
    assert cancelled["error"] == why
    wait_for(lambda: _gone(pid), what="the old task's handler stopped")
    assert hived.wait_task(new["id"])["status"] == "completed"  # the new one took the key
    assert hived.api("GET", "/limits/deploy")["holders"] == 0
    deleted = hivectl(hived, "limit", "delete", "deploy")
    assert (deleted.returncode, deleted.stdout) == (0, "limit/deploy deleted\n"), deleted.stderr
    hived.api("GET", "/limits/deploy", expect=404)
