"""The synchronous client's HTTP over a Unix socket (hivectl/client/unix_http.py) against a real
HTTP/1.1 server on a real socket: keep-alive, a connection the server dropped while idle, chunked
server-sent lines, the query as httpx encodes it, and each transport failure as the client error
hivectl reports (exit 3: unreachable; exit 1: no answer in time)."""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hivectl.client.errors import DaemonUnreachable, RequestTimeout, transport_errors
from hivectl.client.unix_http import TransportFailure, UnixHttp, _target
from hivectl.endpoint import Endpoint


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]]  # set per server

    def log_message(self, *args: Any) -> None:
        pass

    def address_string(self) -> str:  # a Unix socket has no host
        return "unix"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append(  # type: ignore[attr-defined]
            {"path": self.path, "body": json.loads(body), "type": self.headers["Content-Type"]}
        )
        self._answer(201, {"ok": True})

    def do_GET(self) -> None:
        self.server.seen.append({"path": self.path, "auth": self.headers["Authorization"]})  # type: ignore[attr-defined]
        if self.path.startswith("/stream"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in (b"id: 1\ndata: {}\n", b"\n", b"id: 2\r\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/echo/"):
            self._answer(200, {"path": self.path})
            return
        if self.path.startswith("/close"):
            self._answer(200, {"n": len(self.server.seen)}, close=True)  # type: ignore[attr-defined]
            return
        self._answer(200 if not self.path.startswith("/missing") else 404, {"detail": "task 'x' not found"})

    def _answer(self, status: int, body: Any, close: bool = False) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = close


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(str(tmp_path / "s.sock"), Handler)
    srv.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_requests_share_one_connection_and_carry_json_and_the_token(server: Server) -> None:
    client = UnixHttp(server.server_address, {"Authorization": "Bearer t0k"}, timeout=5)  # type: ignore[arg-type]
    try:
        first = client.request("GET", "/tasks/a", params={"wait": 5})
        [conn] = client._idle
        reply = client.request("POST", "/tasks", json={"type": "é", "n": 1})
        assert client._idle == [conn]  # kept alive
        assert (first.status_code, first.json()) == (200, {"detail": "task 'x' not found"})
        assert reply.status_code == 201 and reply.json() == {"ok": True}
        assert reply.request.headers["Authorization"] == "Bearer t0k"
        assert server.seen == [  # type: ignore[attr-defined]
            {"path": "/tasks/a?wait=5", "auth": "Bearer t0k"},
            {"path": "/tasks", "body": {"type": "é", "n": 1}, "type": "application/json"},
        ]
        missing = client.request("GET", "/missing")
        assert missing.status_code == 404 and missing.headers.get("content-type") == "application/json"
        assert missing.reason_phrase == "Not Found" and "not found" in missing.text
    finally:
        client.close()


def test_a_connection_the_server_closed_is_opened_again(server: Server) -> None:
    client = UnixHttp(server.server_address, {}, timeout=5)  # type: ignore[arg-type]
    try:
        assert client.request("GET", "/close").json() == {"n": 1}
        assert client._idle == []  # "Connection: close" honoured
        client.request("GET", "/a")
        [conn] = client._idle
        conn.sock.shutdown(socket.SHUT_WR)  # type: ignore[union-attr]
        # the server ends its side of that connection; the next request notices and reconnects
        deadline = time.monotonic() + 5
        while not conn.dropped():
            assert time.monotonic() < deadline, "the server did not close its side"
            time.sleep(0.01)
        assert client.request("GET", "/b").status_code == 200
        assert client._idle != [conn] and conn.sock is None  # closed, another one used
        assert [seen["path"] for seen in server.seen] == ["/close", "/a", "/b"]  # type: ignore[attr-defined]
    finally:
        client.close()


def test_threads_sharing_a_client_each_get_their_own_answers(server: Server) -> None:
    client = UnixHttp(server.server_address, {}, timeout=5)  # type: ignore[arg-type]
    answers: dict[str, str] = {}

    def ask(thread: int) -> None:
        for i in range(20):
            path = f"/echo/{thread}/{i}"
            answers[path] = client.request("GET", path).json()["path"]

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert len(answers) == 120 and all(path == answer for path, answer in answers.items())


def test_a_stream_yields_its_lines_as_they_come(server: Server) -> None:
    client = UnixHttp(server.server_address, {}, timeout=5)  # type: ignore[arg-type]
    with client.stream("GET", "/stream", params={"follow": "true"}, timeout=(5.0, 5.0, 5.0, 5.0)) as resp:
        assert resp.status_code == 200
        assert list(resp.iter_lines()) == ["id: 1", "data: {}", "", "id: 2"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (None, "/t"),
        ({}, "/t"),
        ({"wait": 5, "follow": True, "x": False}, "/t?wait=5&follow=true&x=false"),
        ({"label": ["a=1", "b=2"]}, "/t?label=a%3D1&label=b%3D2"),
        ({"status": "failed", "q": "a b/c"}, "/t?status=failed&q=a+b%2Fc"),
    ],
)
def test_the_query_is_encoded_as_httpx_encodes_it(params: dict[str, Any] | None, expected: str) -> None:
    assert _target("/t", params) == expected


def test_no_listener_is_unreachable_and_no_answer_is_a_timeout(tmp_path: Path) -> None:
    path = tmp_path / "dead.sock"
    bound = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound.bind(str(path))  # a socket file nobody listens on: connection refused
    endpoint = Endpoint(socket=path)
    with pytest.raises(DaemonUnreachable, match="cannot reach hived at unix:"):
        with transport_errors(endpoint):
            UnixHttp(str(path), {}, timeout=5).request("GET", "/status")
    bound.close()
    path.unlink()
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(path))
    silent.listen()  # accepts (the kernel's backlog) and never answers
    try:
        with pytest.raises(TransportFailure) as failure:
            UnixHttp(str(path), {}, timeout=0.2).request("GET", "/status")
        assert failure.value.timeout and not failure.value.connect
        with pytest.raises(RequestTimeout, match="did not answer in time"):
            with transport_errors(endpoint):
                UnixHttp(str(path), {}, timeout=0.2).request("GET", "/status")
    finally:
        silent.close()


def test_a_chunked_answer_is_read_whole_and_a_line_break_in_a_header_is_refused(server: Server) -> None:
    client = UnixHttp(server.server_address, {}, timeout=5)  # type: ignore[arg-type]
    try:
        whole = client.request("GET", "/stream")
        assert whole.status_code == 200 and whole.text == "id: 1\ndata: {}\n\nid: 2\r\n"
        assert whole.headers["Transfer-Encoding"] == "chunked"
        forged = UnixHttp(server.server_address, {"Authorization": "Bearer x\r\nX-Admin: 1"}, timeout=5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="line break in the header 'Authorization'"):
            forged.request("GET", "/a")
        with pytest.raises(ValueError, match="control character"):
            client.request("GET", "/a b")
        assert [seen["path"] for seen in server.seen] == ["/stream"]  # type: ignore[attr-defined]
    finally:
        client.close()


def test_an_answer_cut_short_is_a_transport_failure(tmp_path: Path) -> None:
    path = tmp_path / "cut.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()

    def half_answer() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"half":')
        conn.close()

    thread = threading.Thread(target=half_answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(TransportFailure, match="closed the connection") as failure:
            UnixHttp(str(path), {}, timeout=5).request("GET", "/status")
        assert not failure.value.connect and not failure.value.timeout
    finally:
        thread.join(5)
        listener.close()
