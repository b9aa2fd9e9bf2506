"""sd_notify messages, read from a real NOTIFY_SOCKET datagram socket opened by the test."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from tests.helpers import Hived


def test_ready_watchdog_and_stopping(hived_factory: Callable[..., Hived], tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    try:
        daemon = hived_factory(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"})
        messages: list[str] = []
        while not any("WATCHDOG=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        assert "READY=1" in messages[0] and f"MAINPID={daemon.proc.pid}" in messages[0]  # type: ignore[union-attr]
        assert daemon.stop() == 0
        rest = []
        while not any("STOPPING=1" in m for m in rest):
            rest.append(sock.recv(4096).decode())
        assert any("STOPPING=1" in m for m in rest)
    finally:
        sock.close()
