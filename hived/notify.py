"""systemd's notify protocol (sd_notify) without libsystemd: READY=1 once the socket serves,
WATCHDOG=1 from the event loop at half of WatchdogSec, STOPPING=1 on shutdown."""

from __future__ import annotations

import asyncio
import os
import socket


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and mine else None
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, message: str) -> bool:
        if not self.address:
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(message.encode(), self.address)
            except OSError:
                return False
        return True

    def ready(self, status: str = "serving") -> None:
        self.send(f"READY=1\nSTATUS={status}\nMAINPID={os.getpid()}")
        if self.watchdog_interval and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watchdog())

    def stopping(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.send("STOPPING=1\nSTATUS=stopping agents")

    async def _watchdog(self) -> None:
        assert self.watchdog_interval is not None
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_interval)
