"""The Unix socket: SO_PEERCRED of each caller logged with every change, and `socket_group` letting
an operators' group in (mode 0660) while others stay out."""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Hived


def test_changes_are_logged_with_the_callers_uid(hived: Hived) -> None:
    task = hived.submit("t", requires=["nobody"])
    hived.api("PUT", f"/tasks/{task['id']}/cancel")
    log = hived.log()
    assert f"POST /tasks by uid {os.getuid()} (pid " in log
    assert f"PUT /tasks/{task['id']}/cancel by uid {os.getuid()}" in log
    assert "GET /tasks" not in log.replace("GET /tasks/", "")  # reads are not logged


def test_a_burst_of_the_same_change_is_one_line_and_its_count(hived: Hived) -> None:
    """hived.auth.audit: a client submitting in a loop writes one line per window, not one per task;
    the count of the rest is written at the window's end (or, here, when hived stops)."""
    for _ in range(30):
        hived.submit("t", requires=["nobody"])
    assert hived.stop() == 0
    log = hived.log()
    line = f"POST /tasks by uid {os.getuid()} (pid {os.getpid()})"
    assert log.count(line) == 2, log[-2000:]  # the first, and the count
    assert f"{line}: 29 more in 10s" in log


RUNUSER = shutil.which("runuser")
CURL = shutil.which("curl")


@pytest.mark.skipif(os.getuid() != 0 or not RUNUSER or not CURL, reason="needs root, runuser and curl")
def test_socket_group_lets_its_members_in(hived_factory: Any, tmp_path: Path) -> None:
    group = grp.getgrgid(1).gr_name  # `daemon` on Debian: the primary group of the daemon user
    state = Path("/tmp") / f"hive-group-{os.getpid()}"  # a path the other user can traverse
    state.mkdir(mode=0o755, exist_ok=True)
    config = tmp_path / "hived.yaml"
    config.write_text(f"kind: Daemon\nsocket_group: {group}\n")
    try:
        hived: Hived = hived_factory(state_dir=state, extra_args=["--config", str(config)])
        mode = hived.socket.stat()
        assert stat.S_IMODE(mode.st_mode) == 0o660 and mode.st_gid == 1

        def as_user(user: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    RUNUSER,
                    "-u",
                    user,
                    "--",
                    CURL,
                    "-s",
                    "--unix-socket",
                    str(hived.socket),
                    "http://hive/status",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )

        member = as_user("daemon")
        assert member.returncode == 0 and '"version"' in member.stdout, member.stderr
        outsider = as_user("nobody")
        assert outsider.returncode != 0  # the file mode keeps them out before hived is even asked
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_an_unknown_socket_group_is_refused(hived_factory: Any, tmp_path: Path) -> None:
    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\nsocket_group: no-such-group-here\n")
    hived: Hived = hived_factory(extra_args=["--config", str(config)], start=False)
    with pytest.raises(AssertionError, match="socket_group: no group 'no-such-group-here'"):
        hived.start(timeout=15)
