"""The README's operator commands work as written: the curl examples of the API section against a
running hived, and the SQLite backup-and-restore procedure."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, Hived

README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def curl_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", section("API"), re.S)
    assert block is not None
    joined = block.group(1).replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.startswith("curl")]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_api_section_curl_examples(hived: Hived) -> None:
    commands = curl_commands()
    assert len(commands) >= 3
    outputs = []
    prefix = None
    for command in commands:
        if prefix:
            command = command.replace("3f2a", prefix)
        result = subprocess.run(
            ["bash", "-c", command],
            env={"S": str(hived.socket), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, (command, result.stderr)
        body = json.loads(result.stdout)
        outputs.append(body)
        if "POST http://hive/tasks" in command:
            prefix = body["id"][:4]
    assert outputs[0]["status"] == "ok"
    submitted, shown = outputs[1], outputs[2]
    assert submitted["priority"] == 7 and submitted["requires"] == ["python"]
    assert shown["id"] == submitted["id"]
    waited = outputs[3]  # submitted with ?wait=5: no agent runs it, so the wait ran out
    assert waited["status"] == "pending" and waited["id"] != submitted["id"]


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 command is not installed")
def test_sqlite_backup_and_restore(hived_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    command = re.search(r'`(sqlite3 \S+ "\.backup [^"]+")`', section("Backup and restore"))
    assert command is not None, "the README's backup command"
    hived: Hived = hived_factory()
    task = hived.submit("keep-me", payload={"n": 1})
    backup = tmp_path / "hive-backup.db"
    line = command.group(1).replace("/var/lib/hive/hive.db", str(hived.state_dir / "hive.db"))
    line = line.replace("/backup/hive-$(date +%F).db", str(backup))
    result = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr  # taken while hived runs
    hived.stop()
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(backup, restored / "hive.db")
    again: Hived = hived_factory(state_dir=restored)
    assert again.task(task["id"])["payload"] == {"n": 1}
