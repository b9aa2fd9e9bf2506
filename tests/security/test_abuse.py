"""Load before and around auth (hardening items 2 and 18): half-sent requests on the TCP listener must
not take the file descriptors the Unix socket needs, and `/events` streams are bounded (per token,
overall, and how far a stream may fall behind), cost little, and end with their clients."""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.helpers import Hived, wait_for
from tests.security.test_tcp import free_port, token

FD_LIMIT = 256  # hived's open-files limit here (soft and hard): few connections reach it


def start_hived(factory: Any, tmp_path: Path, config: str, fd_limit: int | None = None) -> tuple[Hived, int]:
    """A hived on the socket and on TCP, its open-files limit lowered to `fd_limit`."""
    port = free_port()
    path = tmp_path / "hived.yaml"
    path.write_text("kind: Daemon\n" + config)
    hived = factory(extra_args=["--listen", f"127.0.0.1:{port}", "--config", str(path)], start=False)
    if fd_limit is None:
        return hived.start(), port
    popen = subprocess.Popen

    def limited(*args: Any, **kw: Any) -> Any:
        limit = (fd_limit, fd_limit)
        return popen(*args, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit), **kw)

    subprocess.Popen = limited  # type: ignore[misc]
    try:
        return hived.start(), port
    finally:
        subprocess.Popen = popen  # type: ignore[misc]


@contextlib.contextmanager
def half_sent(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections that send part of their request headers and stop."""
    conns: list[socket.socket] = []
    try:
        for _ in range(count):
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            conns.append(conn)
        yield conns
    finally:
        for conn in conns:
            conn.close()


def socket_healthz(hived: Hived, timeout: float = 5.0) -> float:
    """Seconds a /healthz on the Unix socket takes (a fresh connection each time); fails past `timeout`."""
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(hived.socket)), timeout=timeout) as client:
        start = time.monotonic()
        assert client.get("http://hived/healthz").status_code == 200
        return time.monotonic() - start


def closed_by_peer(conn: socket.socket) -> bool:
    """True once hived closed the connection (EOF or reset), reading whatever it sent first."""
    conn.settimeout(0.05)
    try:
        while data := conn.recv(65536):
            if not data:
                break
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_item2_half_sent_requests_leave_the_socket_its_file_descriptors(
    hived_factory: Any, tmp_path: Path
) -> None:
    hived, port = start_hived(hived_factory, tmp_path, "header_timeout: 60s\n", fd_limit=FD_LIMIT)
    with half_sent(port, FD_LIMIT + 50) as conns:
        for _ in range(5):  # operators and agents still get in, on new connections
            socket_healthz(hived)
        refused = wait_for(
            lambda: sum(closed_by_peer(c) for c in conns) >= 50, timeout=20, what="connections past the cap"
        )
        assert refused
    assert "at most 128 connections" in hived.log()


def test_item2_incomplete_requests_time_out(hived_factory: Any, tmp_path: Path) -> None:
    hived, port = start_hived(hived_factory, tmp_path, "header_timeout: 1s\n")
    with half_sent(port, 20) as conns:
        wait_for(lambda: all(closed_by_peer(c) for c in conns), timeout=15, what="incomplete requests closed")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as body:  # a body that stops
        body.sendall(b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        wait_for(lambda: closed_by_peer(body), timeout=15, what="a stalled body closed")
    socket_healthz(hived)


def open_stream(url: str, headers: dict[str, str] | None = None) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=url, headers=headers or {}, timeout=10)
    response = client.send(client.build_request("GET", "/events"), stream=True)
    return client, response


def test_item18_event_streams_are_capped_per_token(hived_factory: Any, tmp_path: Path) -> None:
    hived, port = start_hived(hived_factory, tmp_path, "max_event_streams_per_token: 2\n")
    url = f"http://127.0.0.1:{port}"
    first, second = ({"Authorization": f"Bearer {token(hived, 'read')}"} for _ in range(2))
    streams = [open_stream(url, first) for _ in range(2)]
    try:
        assert [r.status_code for _, r in streams] == [200, 200]
        client, refused = open_stream(url, first)
        assert refused.status_code == 429 and "max_event_streams_per_token" in refused.read().decode()
        client.close()
        other = open_stream(url, second)
        assert other[1].status_code == 200
        streams.append(other)
        old_client, old = streams.pop(0)
        old.close()
        old_client.close()

        def reopened() -> bool:
            client, again = open_stream(url, first)
            streams.append((client, again))
            return again.status_code == 200

        wait_for(reopened, timeout=10, interval=0.1, what="a place freed when a stream ends")
    finally:
        for client, response in streams:
            response.close()
            client.close()


def raw_stream(hived: Hived, since: int) -> socket.socket:
    """A `/events` stream on the socket whose client never reads (a small receive buffer)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.connect(str(hived.socket))
    conn.sendall(f"GET /events?since={since} HTTP/1.1\r\nHost: hived\r\n\r\n".encode())
    return conn


def submit_many(hived: Hived, count: int) -> None:
    for _ in range(count // 500):
        tasks = [{"type": "t", "requires": ["nobody"], "payload": {"pad": "x" * 200}} for _ in range(500)]
        hived.api("POST", "/tasks/batch", json={"tasks": tasks})


@pytest.mark.timeout(180)
def test_item18_slow_streams_are_dropped_and_cost_nothing_once_gone(
    hived_factory: Any, tmp_path: Path
) -> None:
    hived, _port = start_hived(hived_factory, tmp_path, "max_event_lag: 200\nmax_event_streams: 100\n")
    last = hived.api("GET", "/status")["last_event_id"]
    stuck = [raw_stream(hived, last) for _ in range(40)]
    try:
        with hived.client.stream("GET", "/events", params={"since": last}) as reader:
            assert reader.status_code == 200
            submit_many(hived, 4000)
            lines = reader.iter_lines()
            head = [next(lines) for _ in range(4)]  # the wire format is unchanged for those who read
            assert head == [": hived events", "", f"id: {last + 1}", "event: task.submitted"]
        wait_for(lambda: all(closed_by_peer(c) for c in stuck), timeout=60, what="never-read streams dropped")
    finally:
        for conn in stuck:
            conn.close()
    hived.spawn("worker", {"python": "hivectl.agent.builtin:echo"}, capabilities=["echo"])
    task = hived.submit("echo", payload={"n": 1}, requires=["echo"])
    assert hived.wait_task(task["id"])["status"] == "completed"
    assert "without completing response" not in hived.log()
    process = psutil.Process(hived.proc.pid)  # type: ignore[union-attr]
    wait_for(lambda: process.cpu_percent(interval=1.0) < 50, timeout=30, what="hived's CPU back down")


def test_item18_a_slow_reader_is_told_to_reconnect(hived_factory: Any, tmp_path: Path) -> None:
    hived, _port = start_hived(hived_factory, tmp_path, "max_event_lag: 100\n")
    last = hived.api("GET", "/status")["last_event_id"]
    conn = raw_stream(hived, last)
    try:
        submit_many(hived, 2000)  # far more than the buffers between hived and this client hold
        received = b""
        conn.settimeout(20)
        while (data := conn.recv(1024)) and b"\r\n0\r\n\r\n" not in received[-64:] + data:  # its end
            received += data
            time.sleep(0.02)  # reads, slowly: about 50 KB/s
        received += data
        text = received.decode(errors="replace")
        assert "events behind (max_event_lag 100); reconnect with Last-Event-ID: " in text
    finally:
        conn.close()


def test_item18_the_socket_caps_its_streams(hived_factory: Any, tmp_path: Path) -> None:
    hived, _port = start_hived(hived_factory, tmp_path, "max_event_streams: 3\n")
    streams = [raw_stream(hived, 0) for _ in range(3)]
    try:
        wait_for(lambda: all(s.recv(64) for s in streams), what="three streams open")
        refused = hived.client.get("/events")
        assert refused.status_code == 503 and "max_event_streams" in refused.json()["detail"]
        assert hived.client.get("/events", params={"follow": "false"}).status_code == 200
    finally:
        for conn in streams:
            conn.close()


def test_item18_clients_that_never_read_do_not_hold_back_the_backlog_of_others(
    hived_factory: Any, tmp_path: Path
) -> None:
    """Streams send their backlog a few at a time; one whose client does not read gives its place
    back at once, so the backlog of a client that reads still arrives whole."""
    hived, _port = start_hived(hived_factory, tmp_path, "max_event_streams: 100\n")
    submit_many(hived, 3000)  # a backlog far larger than the buffers of a client that never reads
    last = hived.api("GET", "/status")["last_event_id"]
    stuck = [raw_stream(hived, 0) for _ in range(12)]  # more than the places for a backlog
    try:
        with hived.client.stream("GET", "/events", params={"since": 0}, timeout=30) as reader:
            ids = (int(line[4:]) for line in reader.iter_lines() if line.startswith("id: "))
            assert next(i for i in ids if i >= last) == last  # every event up to the newest arrived
    finally:
        for conn in stuck:
            conn.close()
