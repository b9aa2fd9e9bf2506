"""The synchronous client's HTTP/1.1 over hived's Unix socket: the request written here, the answer
read by httptools (the C parser uvicorn serves hived with).

A command that reaches the local hived then imports no httpx (with httpcore and h11) and builds no
TLS context: about a third of a short hivectl command's start-up. Nor does it import http.client,
whose header parsing (the email package's) was most of the client's CPU per request: 130-150 us
against 25 here. Over TCP (`HIVE_URL`: TLS, proxies) the client keeps httpx. `UnixHttp` does what
`hivectl.client.sync` asks of `httpx.Client`: `request`, `stream` (server-sent events, on http.client:
hivectl/client/unix_stream.py) and `close`, and its answers have the part of `httpx.Response` the
client reads (`Answer`). Connections are kept alive between requests (one per thread using the client
at once, as httpx's pool would); one that hived closed meanwhile (its keep-alive timeout) is noticed
before it is used, and another is opened.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import re
import select
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import httptools

from hivectl.client.answers import CONNECT_TIMEOUT, Sent, TransportFailure, connect

READ_SIZE = 65536
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # sent with Content-Length: 0 when empty (http.client)
UNSAFE = re.compile(r"[\x00-\x20\x7f]")  # in a request target or header: refused, as http.client does


class Headers(dict[str, str]):
    """An answer's headers, by lower-case name; `get` takes any case, as httpx's does."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())


class Reply:
    """A whole answer."""

    def __init__(
        self, status: int, reason: str, headers: Headers, content: bytes, sent: Mapping[str, str]
    ) -> None:
        self.status_code = status
        self.reason_phrase = reason
        self.headers = headers
        self.request = Sent(sent)
        self.content = content

    def read(self) -> bytes:
        return self.content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class _Parsed:
    """httptools' callbacks: what has arrived of one answer."""

    def __init__(self) -> None:
        self.reason = b""
        self.headers = Headers()
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()  # (known only now)


class _Connection:
    """One connection to hived's socket, kept alive; connected by its first request."""

    def __init__(self, path: str, timeout: float | None) -> None:
        self.path = path
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.will_close = False

    def exchange(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> Reply:
        sock = self.sock or self._connect()
        sock.settimeout(self.timeout)
        try:
            sock.sendall(_request(method, target, headers, body))
            parsed = _Parsed()
            while not parsed.complete:
                data = sock.recv(READ_SIZE)
                if not data:
                    raise TransportFailure("hived closed the connection without an answer")
                parsed.parser.feed_data(data)
        except TimeoutError:
            raise TransportFailure("timed out", timeout=True) from None
        except OSError as exc:
            raise TransportFailure(str(exc) or type(exc).__name__) from None
        except httptools.HttpParserError as exc:
            raise TransportFailure(f"not an HTTP answer: {exc}") from None
        self.will_close = not parsed.keep_alive
        status, reason = parsed.parser.get_status_code(), parsed.reason.decode("latin-1")
        return Reply(status, reason, parsed.headers, b"".join(parsed.body), headers)

    def _connect(self) -> socket.socket:
        self.sock = connect(self.path, self.timeout)
        return self.sock

    def dropped(self) -> bool:
        """Closed by hived since the last answer (readable while idle: its EOF)."""
        return self.sock is not None and bool(select.select([self.sock], [], [], 0)[0])

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _request(method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> bytes:
    """The request's bytes. A target or header with a control character (a CR or LF would start
    another header) is refused, as http.client refuses it."""
    lines = [f"{method} {target} HTTP/1.1"]
    if UNSAFE.search(method + target):
        raise ValueError(f"a control character in the request target {target!r}")
    for name, value in headers.items():
        if UNSAFE.search(name) or "\r" in value or "\n" in value:
            raise ValueError(f"a line break in the header {name!r}")
        lines.append(f"{name}: {value}")
    if body is not None or method in BODY_METHODS:
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class UnixHttp:
    def __init__(self, path: str, headers: Mapping[str, str], timeout: float) -> None:
        self.path = path
        self.headers = {"Host": "hived", "Accept": "*/*", **headers}
        self.timeout = timeout
        self._idle: list[_Connection] = []  # kept alive, not in use
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        timeout: float | None = None,
    ) -> Reply:
        conn = self._take()
        conn.timeout = self.timeout if timeout is None else timeout
        sent = dict(self.headers)
        body = None
        if json is not None:  # as httpx encodes it
            body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            sent["Content-Type"] = "application/json"
        try:
            reply = conn.exchange(method, _target(url, params), sent, body)
        except BaseException:
            conn.close()
            raise
        if conn.will_close:
            conn.close()
        else:
            with self._lock:
                self._idle.append(conn)
        return reply

    def _take(self) -> _Connection:
        """An idle connection still open, else a new one (connected by its first request)."""
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.dropped():
                    return conn
                conn.close()
        return _Connection(self.path, self.timeout)

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float | None, float, float] = (CONNECT_TIMEOUT, None, 10.0, 10.0),
    ) -> Iterator[Any]:
        """An answer read as it comes, on a connection of its own (closed at the end); `timeout` as
        httpx takes it: (connect, read, write, pool)."""
        from hivectl.client.unix_stream import stream

        sent = {**self.headers, **(headers or {})}
        with stream(self.path, method, _target(url, params), sent, timeout[1]) as answer:
            yield answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _target(url: str, params: Mapping[str, Any] | None) -> str:
    """The path with its query, encoded as httpx encodes params (booleans as true/false, a list as
    the key repeated)."""
    if not params:
        return url
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            pairs.append((key, _primitive(item)))
    return f"{url}?{urlencode(pairs)}"


def _primitive(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)
