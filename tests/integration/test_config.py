"""hived.yaml: validation with file:line, --check-config, declared agents kept running, overrides."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import REPO, Hived, wait_for

CONFIG = """\
kind: Daemon
stop_grace: 3s
drain_grace: 1s
---
kind: Agent
name: declared
replicas: 2
capabilities: [cfg]
handler: {python: "hivectl.agent.builtin:echo"}
"""


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hived.main", "--config", str(path), "--check-config"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_check_config_ok(tmp_path: Path) -> None:
    path = tmp_path / "hived.yaml"
    path.write_text(CONFIG)
    result = check(path)
    assert result.returncode == 0 and "2 declared agents" in result.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Daemon\nstop_grace: forever\n", "hived.yaml:2: stop_grace: 'forever' is not a duration"),
        ("kind: Daemon\nlisten: 0.0.0.0\n", "listen: '0.0.0.0' is not HOST:PORT"),
        ("kind: Daemon\nlisten_on: x\n", "hived.yaml:2: unknown key 'listen_on'"),
        ("kind: Daemon\n---\nkind: Daemon\n", "hived.yaml:3: a second kind: Daemon document"),
        (
            "kind: Agent\nname: a\n---\nkind: Agent\nname: a\n",
            "hived.yaml:5: name: Agent 'a' is also defined at",
        ),
        ("kind: Limit\nname: l\nrate: 5/fortnight\n", "hived.yaml:3: rate: '5/fortnight' is not a rate"),
        (
            "kind: Limit\nname: l\nrate: 5/s\n---\nkind: Limit\nname: l\nrate: 6/s\n",
            "hived.yaml:6: name: Limit 'l' is also defined at",
        ),
    ],
)
def test_bad_config_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "hived.yaml"
    path.write_text(text)
    result = check(path)
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_declared_agents_start_with_the_daemon(hived_factory: Callable[..., Hived], tmp_path: Path) -> None:
    path = tmp_path / "hived.yaml"
    path.write_text(CONFIG)
    daemon = hived_factory(extra_args=["--config", str(path)])
    agents = wait_for(
        lambda: (
            len(active := [a for a in daemon.api("GET", "/agents")["items"] if a["status"] == "active"]) == 2
            and active
        ),
        what="two declared agents active",
    )
    assert sorted(a["name"] for a in agents) == ["declared-1", "declared-2"]
    done = daemon.wait_task(daemon.submit("x", requires=["cfg"], payload={"k": 1})["id"])
    assert done["status"] == "completed"


def test_declared_limits_are_set_as_hived_starts(hived_factory: Callable[..., Hived], tmp_path: Path) -> None:
    """`kind: Limit` in hived.yaml, as `hivectl apply` would set it; a restart with it unchanged
    leaves it (and its bucket) as it was."""
    path = tmp_path / "hived.yaml"
    path.write_text(
        "kind: Limit\nname: provider\nrate: 50/min\n---\nkind: Limit\nname: repo\nconcurrency: 1\n"
    )
    assert "2 declared limits" in check(path).stdout
    daemon = hived_factory(extra_args=["--config", str(path)])
    limits = {item["name"]: item for item in daemon.api("GET", "/limits")["items"]}
    assert set(limits) == {"provider", "repo"}
    assert daemon.api("GET", "/limits/repo")["concurrency"] == 1


def test_the_shipped_example_config_is_valid() -> None:
    result = check(REPO / "deploy" / "hived.yaml")
    assert result.returncode == 0, result.stderr
    assert "2 declared agents" in result.stdout


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    import shutil

    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed here")
    unit = (REPO / "deploy" / "hived.service").read_text()
    hived_bin = Path(sys.executable).parent / "hived"
    unit = unit.replace("/opt/hive/.venv/bin/hived", str(hived_bin))
    (tmp_path / "hived.service").write_text(unit)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "hived.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [line for line in result.stderr.splitlines() if "hived.service" in line]
    assert result.returncode == 0 and not problems, result.stderr
