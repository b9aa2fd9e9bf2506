"""Artifacts (issue 18): files a handler writes to $HIVE_ARTIFACTS are kept with the attempt, within
`kind: Daemon` limits; bad names and stale leases are refused and nothing is written outside the
attempt's folder. A real hived and a real hive-agent."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.helpers import Hived, wait_for

HANDLER = r"""
import json, os, pathlib, sys, time
p = json.load(sys.stdin)
out = pathlib.Path(os.environ["HIVE_ARTIFACTS"])
pathlib.Path(p["mark"]).write_text(os.environ["HIVE_ATTEMPT_MARK"])
if p.get("hang"):
    time.sleep(300)
(out / "report.txt").write_text("all good\n")
(out / "sub").mkdir()
(out / "sub" / "data.json").write_text(json.dumps({"n": 1}))
(out / "b.bin").write_bytes(b"b" * 900)
(out / "big.bin").write_bytes(b"x" * 2000)
(out / "c.bin").write_bytes(b"c" * 700)
os.symlink("/etc/passwd", out / "link")
print(json.dumps({"ok": True}))
"""
DAEMON = "kind: Daemon\nmax_artifact_bytes: 1000\nmax_attempt_artifacts_bytes: 1500\n"


def start(hived_factory: Callable[..., Hived], tmp_path: Path) -> Hived:
    config = tmp_path / "hived.yaml"
    config.write_text(DAEMON)
    hived = hived_factory(extra_args=["--config", str(config)])
    script = tmp_path / "handler.py"
    script.write_text(HANDLER)
    hived.spawn("maker", {"exec": [sys.executable, str(script)]})
    return hived


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def test_artifacts_are_kept_within_the_limits(hived_factory: Callable[..., Hived], tmp_path: Path) -> None:
    hived = start(hived_factory, tmp_path)
    task = hived.submit("make", payload={"mark": str(tmp_path / "mark")})
    assert hived.wait_task(task["id"])["status"] == "completed"
    listing = hived.api("GET", f"/tasks/{task['id']}/artifacts")
    names = [(a["attempt"], a["name"], a["size"]) for a in listing["items"]]
    assert names == [(1, "b.bin", 900), (1, "report.txt", 9), (1, "sub/data.json", 8)]
    assert hived.api("GET", f"/tasks/{task['id']}/artifacts/sub/data.json") == '{"n": 1}'
    assert files_under(hived.state_dir / "artifacts") == [
        f"{task['id']}/1/b.bin",
        f"{task['id']}/1/report.txt",
        f"{task['id']}/1/sub/data.json",
    ]
    output = hived.api("GET", f"/tasks/{task['id']}/logs")
    assert "artifact big.bin: 2000 bytes, over max_artifact_bytes (1000): not kept" in output
    assert "artifact c.bin: over max_attempt_artifacts_bytes (1500) for the attempt: not kept" in output
    assert "artifact link: not a regular file (a symlink?): not kept" in output
    agent_dir = hived.state_dir / "agents" / "maker" / "artifacts"
    assert list(agent_dir.iterdir()) == []  # the attempt's own folder is gone once uploaded
    # the CLI
    cli = [sys.executable, "-m", "hivectl.cli.main", "task"]
    shown = subprocess.run([*cli, "artifacts", task["id"][:8]], env=hived.env, capture_output=True, text=True)
    assert shown.returncode == 0 and "sub/data.json" in shown.stdout and "900" in shown.stdout
    got = tmp_path / "got.txt"
    fetched = subprocess.run(
        [*cli, "artifact", task["id"][:8], "report.txt", "-o", str(got)], env=hived.env, capture_output=True
    )
    assert fetched.returncode == 0 and got.read_text() == "all good\n"
    missing = subprocess.run(
        [*cli, "artifact", task["id"], "nope"], env=hived.env, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "no artifact 'nope'" in missing.stderr


def test_bad_names_stale_leases_and_sizes_are_refused(
    hived_factory: Callable[..., Hived], tmp_path: Path
) -> None:
    hived = start(hived_factory, tmp_path)
    mark = tmp_path / "mark"
    task = hived.submit("make", payload={"mark": str(mark), "hang": True})
    task_id, lease = wait_for(lambda: mark.exists() and mark.read_text()).rsplit(":", 1)
    agent = hived.api("GET", "/agents/maker")
    chunk = {"incarnation": 1, "task_id": task_id, "attempt": 1, "lease": int(lease)}
    data = base64.b64encode(b"hello").decode()

    def post(name: str, **extra: object) -> tuple[int, str]:
        body = {**chunk, "name": name, "offset": 0, "final": True, "data": data, **extra}
        resp = hived.client.post(f"/agents/{agent['id']}/artifacts", json=body)
        return resp.status_code, resp.json().get("detail", "")

    for name, problem in [
        ("../escape", "'..', '.' and empty path parts are not allowed"),
        ("a/../../escape", "'..', '.' and empty path parts are not allowed"),
        ("/tmp/escape", "an absolute path is not allowed"),
        ("./x", "'..', '.' and empty path parts are not allowed"),
    ]:
        code, detail = post(name)
        assert code == 422 and problem in detail, (name, code, detail)
    code, detail = post("ok.txt", lease=int(lease) + 1)
    assert code == 409 and "lease is no longer valid" in detail
    code, detail = post("big.bin", data=base64.b64encode(b"x" * 1001).decode())
    assert code == 413 and "over max_artifact_bytes (1000)" in detail
    assert post("ok.txt") == (200, "")
    assert files_under(hived.state_dir / "artifacts") == [f"{task_id}/1/ok.txt"]
    assert not (tmp_path / "escape").exists() and not Path("/tmp/escape").exists()
    assert not (hived.state_dir / "artifacts" / task_id / "escape").exists()
    resp = hived.client.get(f"/tasks/{task_id}/artifacts/..%2F..%2Fhive.db")
    assert resp.status_code in (404, 422) and b"SQLite" not in resp.content
    hived.api("PUT", f"/tasks/{task['id']}/cancel")
    assert os.path.exists(hived.state_dir / "hive.db")
