"""`install.sh --system` into a temporary root: what it creates, what it says it skipped, that the
result is a valid configuration, and that a second run keeps the operator's config."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO


def install(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "install.sh"), "--system", "--root", str(root), "--no-venv"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_system_install_into_a_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = install(root)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "skipped: user 'hive'" in out and "useradd --system" in out
    assert "skipped: systemctl" in out and "systemctl enable --now hived" in out
    assert "skipped: the venv" in out

    assert (root / "opt/hive/hived/orchestrator.py").is_file()
    assert (root / "opt/hive/pyproject.toml").is_file()
    assert not (root / "opt/hive/.venv").exists() and not (root / "opt/hive/.git").exists()
    unit = root / "etc/systemd/system/hived.service"
    assert unit.read_text() == (REPO / "deploy/hived.service").read_text()
    config = root / "etc/hive/hived.yaml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert stat.S_IMODE((root / "var/lib/hive").stat().st_mode) == 0o700

    checked = subprocess.run(
        [sys.executable, "-m", "hived.main", "--config", str(config), "--check-config"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0 and "ok" in checked.stdout, checked.stderr

    config.write_text(config.read_text() + "# the operator's own change\n")
    again = install(root)
    assert again.returncode == 0 and "kept the existing" in again.stdout
    assert config.read_text().endswith("# the operator's own change\n")


def test_system_install_refuses_unknown_options(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(REPO / "install.sh"), "--system", "--bogus"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "unknown option '--bogus'" in result.stderr


@pytest.mark.timeout(600)  # the install's own deadline: building a venv on a loaded machine takes minutes
def test_system_install_builds_a_working_venv(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = subprocess.run(
        [str(REPO / "install.sh"), "--system", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    venv_bin = root / "opt/hive/.venv/bin"
    checked = subprocess.run(
        [str(venv_bin / "hived"), "--config", str(root / "etc/hive/hived.yaml"), "--check-config"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0 and "declared agents" in checked.stdout, checked.stderr
    for command in ("hivectl", "hive-agent", "hive-tui"):
        assert (venv_bin / command).is_file(), command
