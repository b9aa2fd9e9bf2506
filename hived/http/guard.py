"""Connections before any auth: uvicorn times out neither a TLS handshake nor request headers that
never end, and accepts connections until the process runs out of file descriptors (then the Unix
socket fails too: operators and agents are reset).

- `raise_fd_limit` raises the soft RLIMIT_NOFILE to the hard limit at start; `tcp_cap` keeps at most
  half of it for a TCP listener, the rest for the socket, agents and the database.
- `Acceptor` accepts the TCP listener's connections itself: at most `cap` open at once (the TLS
  handshake included; past it a connection is answered 503 and closed at once), each with
  `header_timeout` s for its handshake.
- `HeaderDeadline` (mixed into uvicorn's httptools protocol) closes a connection whose request
  headers are not complete `header_timeout` s after it opened or its request began, and one whose
  body stops arriving for as long. It also gives each request a way to close its connection at once
  (`scope["state"]["hived.abort"]`, for event streams stuck on a client that does not read)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import ssl
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hived.http.corked import CorkedWrites

log = logging.getLogger("hived")
BUSY = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\nretry-after: 1\r\n\r\n"
OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def raise_fd_limit() -> int:
    """Raise the soft limit of open files to the hard one; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            log.info("open files: soft limit raised from %d to %d (the hard limit)", soft, target)
            return target
        except (ValueError, OSError) as exc:
            log.warning("open files: could not raise the soft limit %d to %d: %s", soft, target, exc)
    log.info("open files: limit %s (hard %s)", soft, hard)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def tcp_cap(fd_limit: int, configured: int | None) -> int:
    """Connections a TCP listener may hold: `max_connections`, but never over half the fd limit."""
    half = max(8, fd_limit // 2)
    return min(configured, half) if configured else min(4096, half)


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for incomplete requests. The deadline is a time
    (`_due`) that each step of a request moves; one timer per connection looks at it when it fires
    and waits again for what is left, so a request costs no timer of its own."""

    header_timeout: float = 10.0
    on_lost: Callable[[], None] | None = None  # the Acceptor's: frees the connection's place
    _timer: asyncio.TimerHandle | None = None
    _due: float | None = None  # (loop time) the connection is closed then, unless it moved on
    _in_body = False

    def _arm(self) -> None:
        self._due = self.loop.time() + self.header_timeout
        if self._timer is None:
            self._timer = self.loop.call_later(self.header_timeout, self._check)

    def _disarm(self) -> None:
        self._due = None  # (the timer, if any, then finds nothing due)

    def _check(self) -> None:
        self._timer = None
        if self._due is None:
            return
        left = self._due - self.loop.time()
        if left > 0:
            self._timer = self.loop.call_later(left, self._check)
        else:
            self._due = None
            self._expired()

    def _expired(self) -> None:
        if not self.transport.is_closing():
            what = "a request body that stopped" if self._in_body else "request headers not complete"
            log.info("closing a connection: %s after %gs", what, self.header_timeout)
            self.transport.abort()

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)
        if self.on_lost is not None:
            self.on_lost()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_body and self._due is not None:
            self._arm()  # the body: an idle timeout, not a deadline

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["state"]["hived.abort"] = self._abort
        if self._due is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._in_body = True
        self._arm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()
        super().on_message_complete()

    def _abort(self) -> None:
        if not self.transport.is_closing():
            self.transport.abort()


class Acceptor:
    """Serves a listening TCP socket with at most `cap` connections open at once. Quacks like the
    asyncio Server uvicorn keeps (`close`, `wait_closed`)."""

    def __init__(
        self,
        sock: socket.socket,
        protocol: Callable[[], asyncio.Protocol],
        tls: ssl.SSLContext | None,
        cap: int,
        handshake_timeout: float,
    ) -> None:
        self.sock, self.protocol, self.tls, self.cap = sock, protocol, tls, cap
        self.handshake_timeout = handshake_timeout
        self.open = 0
        self.refused = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._accept(), name="tcp-accept")

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _addr = await loop.sock_accept(self.sock)
            except OSError as exc:
                if exc.errno not in OUT_OF_FDS:
                    raise
                log.error("TCP listener: cannot accept (%s): pausing 1 s", exc.strerror)
                await asyncio.sleep(1.0)
                continue
            if self.open >= self.cap:
                self._refuse(conn)
                continue
            self.open += 1
            loop.create_task(self._serve(conn))

    def _refuse(self, conn: socket.socket) -> None:
        if self.refused % 1000 == 0:
            log.warning("TCP listener: %d connections open (max_connections): refusing more", self.cap)
        self.refused += 1
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            conn.send(BUSY)
        conn.close()

    async def _serve(self, conn: socket.socket) -> None:
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open -= 1

        def make() -> asyncio.Protocol:
            protocol = self.protocol()
            protocol.on_lost = release  # type: ignore[attr-defined]  # a HeaderDeadline
            return protocol

        loop = asyncio.get_running_loop()
        extra = {"ssl_handshake_timeout": self.handshake_timeout} if self.tls else {}
        try:
            await asyncio.wait_for(
                loop.connect_accepted_socket(make, conn, ssl=self.tls, **extra), self.handshake_timeout + 1
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError):
            conn.close()
            release()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def wait_closed(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def guarded(base: type[HttpToolsProtocol], header_timeout: float) -> type[HttpToolsProtocol]:
    """`base` (uvicorn's httptools protocol or a subclass) with HeaderDeadline's deadlines, and one
    send per response (CorkedWrites)."""
    bases = (HeaderDeadline, CorkedWrites) + (() if base is HttpToolsProtocol else (base,))
    return type(f"Guarded{base.__name__}", bases, {"header_timeout": header_timeout})
