"""Accepting the Unix socket's connections in bursts: libuv (uvloop's loop) accepts one connection
per turn of the event loop. 500 `/events` clients connecting in the same instant then took 500
turns to get in, each carrying the work of the streams already in, and a `/healthz` that came right
after them waited behind all of them (0.3-1.3 s, measured by bench/abuse.py with the time of each
connection's accept). `BurstAcceptor` takes every pending connection at each readiness of the
listening socket (at most BURST), so a connection waits one turn for its accept, however many
came just before it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger("hived")
BURST = 1024  # connections accepted in one turn at most (the rest: the next turn)
OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class BurstAcceptor:
    """Serves a listening socket (non-blocking): each pending connection gets `protocol()`. Quacks
    like the asyncio Server uvicorn keeps (`close`, `wait_closed`)."""

    def __init__(self, sock: socket.socket, protocol: Callable[[], asyncio.Protocol]) -> None:
        self.sock, self.protocol = sock, protocol
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.Task[object]] = set()
        self._paused: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._ready)

    def _ready(self) -> None:
        assert self._loop is not None
        for _ in range(BURST):
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in OUT_OF_FDS:
                    raise
                log.error("socket: cannot accept (%s): pausing 1 s", exc.strerror)
                self._loop.remove_reader(self.sock.fileno())
                self._paused = self._loop.call_later(1.0, self.start)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._connect(conn))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _connect(self, conn: socket.socket) -> None:
        assert self._loop is not None
        try:
            await self._loop.connect_accepted_socket(self.protocol, conn)
        except OSError:
            conn.close()

    def close(self) -> None:
        if self._paused is not None:
            self._paused.cancel()
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self.sock.fileno())

    async def wait_closed(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
