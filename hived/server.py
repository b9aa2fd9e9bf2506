"""Serving the API: hived binds its Unix socket itself (mode 0600 in a 0700 directory; uvicorn's
own `uds=` would leave it world-writable) and hands it to uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hived.auth.peer import PeerCredProtocol, allowed_uids
from hived.config import Serving, Settings
from hived.http.accept import BurstAcceptor
from hived.http.app import SocketGate, TcpGate, create_app
from hived.http.guard import Acceptor, guarded, raise_fd_limit, tcp_cap
from hived.http.sse import StreamLimits
from hived.http.warm import warm, warm_routes
from hived.notify import Notifier
from hived.orchestrator import AgentOrchestrator
from hived.store.ownership import CHECK_INTERVAL
from hived.watchdog import start_from_env

log = logging.getLogger("hived")


class SocketInUse(RuntimeError):
    pass


def bind_unix_socket(path: Path, group: str | None = None) -> socket.socket:
    parent = path.parent
    if not parent.exists():
        parent.mkdir(parents=True, mode=0o700)
    elif stat.S_IMODE(parent.stat().st_mode) & 0o077 and parent.stat().st_uid == os.getuid():
        log.warning(
            "socket directory %s is accessible to others (mode %o)",
            parent,
            stat.S_IMODE(parent.stat().st_mode),
        )
    if path.exists() or path.is_symlink():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # stale socket of a hived that died
        else:
            raise SocketInUse(f"another hived is already serving {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    if group:  # operators in this group may use the socket too: 0660, and the directory 0750
        gid = grp.getgrnam(group).gr_gid
        os.chown(path, -1, gid)
        os.chmod(path, 0o660)
        if parent.stat().st_uid == os.getuid():
            os.chown(parent, -1, gid)
            os.chmod(parent, 0o750)
    sock.listen(4096)
    sock.setblocking(False)
    return sock


class HiveServer(uvicorn.Server):
    """uvicorn's server, which also ends the agents' long-polls when asked to exit."""

    def __init__(
        self,
        config: uvicorn.Config,
        orchestrator: AgentOrchestrator,
        notifier: Notifier,
        drain_grace: float = 10.0,
    ) -> None:
        super().__init__(config)
        self.orchestrator = orchestrator
        self.notifier = notifier
        self.drain_grace = drain_grace
        self._draining = False
        self.listener_failed = ""  # why the TCP listener ended before this server

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's startup, but the socket's connections are accepted in bursts (hived.http.accept)."""
        await start_accepting(self, sockets, BurstAcceptor)
        self.notifier.ready()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.notifier.stopping()
        await super().shutdown(sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        """First signal: drain (no new work; running tasks get `drain_grace` to finish while the API
        still serves their results), then stop. A second signal stops at once."""
        if not self._draining and self.drain_grace > 0 and self.started:
            self._draining = True
            loop = asyncio.get_event_loop()
            loop.call_soon_threadsafe(lambda: loop.create_task(self._drain_then_exit(sig, frame)))
            return
        self._exit_now(sig, frame)

    async def _drain_then_exit(self, sig: int, frame: Any) -> None:
        self.notifier.stopping()
        dispatcher = self.orchestrator.dispatcher
        running = len(dispatcher.in_flight)
        log.info("hived stopping: draining %d running tasks (grace %gs)", running, self.drain_grace)
        dispatcher.paused = True
        deadline = asyncio.get_running_loop().time() + self.drain_grace
        while dispatcher.in_flight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if dispatcher.in_flight:
            log.warning("hived stopping: %d tasks still running after the grace", len(dispatcher.in_flight))
        self._exit_now(sig, frame)

    def _exit_now(self, sig: int, frame: Any) -> None:
        self.orchestrator.dispatcher.closing = True
        for channel in self.orchestrator.dispatcher.channels.values():
            channel.wake.set()
        super().handle_exit(sig, frame)
        # uvicorn re-raises the signal after serving, which would kill us before agents are stopped.
        self._captured_signals.clear()


def _listener_ended(task: asyncio.Task[None], server: HiveServer) -> None:
    """The TCP listener stops only when the socket's server does; if it ends by itself (its TLS
    could not be set up, say), hived must not go on serving half of its API: it stops, exit 1."""
    if server.should_exit:
        return
    error = None if task.cancelled() else task.exception()
    server.listener_failed = f"the TCP listener stopped: {error or 'it ended by itself'}"
    log.critical("hived stopping: %s", server.listener_failed)
    server.should_exit = True


class TcpServer(uvicorn.Server):
    """The TCP listener: the socket's server owns the signals and tells this one when to stop. It
    accepts connections itself, at most `cap` at once (hived.http.guard)."""

    def __init__(self, config: uvicorn.Config, cap: int, handshake_timeout: float) -> None:
        super().__init__(config)
        self.cap, self.handshake_timeout = cap, handshake_timeout

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        ssl, cap, timeout = self.config.ssl, self.cap, self.handshake_timeout
        await start_accepting(
            self, sockets, lambda sock, protocol: Acceptor(sock, protocol, ssl, cap, timeout)
        )


async def start_accepting(server: uvicorn.Server, sockets: list[socket.socket] | None, acceptor: Any) -> None:
    """uvicorn's startup with hived's own acceptors: `acceptor(sock, protocol)` accepts each socket's
    connections, each served by a new `protocol()` (uvicorn's HTTP protocol)."""
    await server.lifespan.startup()
    config = server.config

    def protocol() -> asyncio.Protocol:
        return config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=server.server_state, app_state=server.lifespan.state
        )

    server.servers = []
    for sock in sockets or []:
        started = acceptor(sock, protocol)
        started.start()
        server.servers.append(started)
    server.started = True


def bind_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SocketInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def tcp_gate(settings: Settings) -> TcpGate:
    assert settings.listen is not None
    host = settings.listen[0].lower()
    hosts = set(settings.allowed_hosts)
    if not hosts and host not in ("0.0.0.0", "::"):
        hosts = {host, "localhost", "127.0.0.1", "::1"}
    if not hosts:
        log.warning("listening on all addresses without allowed_hosts: the Host header is not checked")
    return TcpGate(frozenset(hosts), frozenset(settings.allowed_origins))


def uvicorn_config(app: Any, access_log: bool, **extra: Any) -> uvicorn.Config:
    extra.setdefault("http", "httptools")
    extra.setdefault("proxy_headers", False)  # the Unix socket: no proxy there (the TCP listener's: on)
    return uvicorn.Config(
        app,
        loop="none",
        lifespan="off",
        access_log=access_log,
        log_config=None,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=30,
        server_header=False,  # (one header less for every client to parse; Date stays, as HTTP asks)
        **extra,
    )


def stream_limits(bounds: Serving) -> StreamLimits:
    return StreamLimits(
        max_lag=bounds.max_event_lag,
        max_streams=bounds.max_event_streams,
        per_token=bounds.max_event_streams_per_token,
    )


def tcp_listener(
    orchestrator: AgentOrchestrator, settings: Settings, access_log: bool, fd_limit: int
) -> TcpServer:
    """The TCP listener's server, its connections capped from the open-files limit: half of it at
    most, the rest stays for the socket, the agents and the database."""
    bounds = settings.serving
    cap = tcp_cap(fd_limit, bounds.max_connections)
    tcp_app = create_app(
        orchestrator, manage_lifecycle=False, tcp=tcp_gate(settings), streams=stream_limits(bounds)
    )
    tls = {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key} if settings.tls_cert else {}
    protocol = guarded(HttpToolsProtocol, bounds.header_timeout)
    return TcpServer(
        uvicorn_config(tcp_app, access_log, http=protocol, proxy_headers=True, **tls),
        cap,
        bounds.header_timeout,
    )


async def own_then_bind(orchestrator: AgentOrchestrator, settings: Settings) -> socket.socket:
    """Own the database before taking the socket: a standby on this host waits here, then takes over
    the socket of the hived it replaces (its agents reconnect there and are adopted).

    A standby that gets the lock while that socket is still served has seen a blip of the owner's
    lock connection, not its end: it lets the lock go, so that the owner takes it again at its next
    check, and goes back to waiting rather than exit and leave no standby."""
    while True:
        await orchestrator.ownership.acquire(standby=orchestrator.standby)
        try:
            return bind_unix_socket(settings.socket, settings.socket_group)
        except SocketInUse as exc:
            if not orchestrator.standby:
                raise
            await orchestrator.ownership.release()
            log.warning("standby: the lock was free but %s (its lock connection blipped): waiting again", exc)
            await asyncio.sleep(2 * CHECK_INTERVAL)


def socket_gate(settings: Settings) -> SocketGate:
    try:
        uids, gid = allowed_uids(settings.socket_group)
    except KeyError:
        raise SocketInUse(f"socket_group: no group {settings.socket_group!r} on this host") from None
    return SocketGate(frozenset(uids), gid)


async def serve(orchestrator: AgentOrchestrator, settings: Settings, access_log: bool = False) -> None:
    socket_path = settings.socket
    gate = socket_gate(settings)
    fd_limit = raise_fd_limit()
    watchdog = start_from_env(asyncio.get_running_loop())  # HIVE_LOOP_WATCHDOG=MS: stalls logged
    sock = await own_then_bind(orchestrator, settings)
    tcp_sock = bind_tcp(*settings.listen) if settings.listen else None
    tcp_task: asyncio.Task[None] | None = None
    tcp_server: TcpServer | None = None
    bounds = settings.serving
    try:
        await orchestrator.start()
        app = create_app(
            orchestrator,
            manage_lifecycle=False,
            peers=gate,
            streams=stream_limits(bounds),
        )
        server = HiveServer(
            uvicorn_config(app, access_log, http=guarded(PeerCredProtocol, bounds.header_timeout)),
            orchestrator,
            Notifier(),
            drain_grace=settings.drain_grace,
        )
        await warm(app)  # before the socket accepts: no request pays for FastAPI's or CEL's lazy builds
        if tcp_sock is not None and settings.listen is not None:
            tcp_server = tcp_listener(orchestrator, settings, access_log, fd_limit)
            await warm_routes(tcp_server.config.app)
            tcp_task = asyncio.create_task(tcp_server.serve(sockets=[tcp_sock]), name="tcp-listener")
            tcp_task.add_done_callback(lambda task: _listener_ended(task, server))
            scheme = "https" if settings.tls_cert else "http"
            log.info(
                "hived serving on %s://%s:%d (tokens required; at most %d connections)",
                scheme,
                *settings.listen,
                tcp_server.cap,
            )
        log.info("hived serving on unix:%s", socket_path)
        await server.serve(sockets=[sock])
        if server.listener_failed:
            raise SocketInUse(server.listener_failed)
    finally:
        if tcp_server is not None and tcp_task is not None:
            tcp_server.should_exit = True
            with contextlib.suppress(Exception):
                await tcp_task
        if tcp_sock is not None:
            tcp_sock.close()
        gate.audit.flush(everything=True)  # the counts of the last repeated changes
        log.info("hived stopping: stopping agents")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(orchestrator.shutdown(), timeout=orchestrator.agents.stop_grace + 15)
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        if watchdog is not None:
            watchdog.stop()
        log.info("hived stopped")
