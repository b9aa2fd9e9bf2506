"""The synchronous client's HTTP/1.1 over hived's Unix socket, on the standard library (http.client).

A command that reaches the local hived then imports no httpx (with httpcore and h11) and builds no
TLS context: about a third of a short hivectl command's start-up. Over TCP (`HIVE_URL`:
TLS, proxies) the client keeps httpx. `UnixHttp` does what `hivectl.client.sync` asks of
`httpx.Client`: `request`, `stream` (server-sent events) and `close`, and its answers have the part of
`httpx.Response` the client reads (`Answer`). Connections are kept alive between requests (one per
thread using the client at once, as httpx's pool would); one that hived closed meanwhile (its
keep-alive timeout) is noticed before it is used, and another is opened.
"""

from __future__ import annotations

import contextlib
import http.client
import json as jsonlib
import select
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

CONNECT_TIMEOUT = 10.0


class Answer(Protocol):
    """What the client reads of an answer: httpx.Response and `Reply` both have it."""

    status_code: int
    reason_phrase: str

    @property
    def headers(self) -> Any: ...

    @property
    def request(self) -> Any: ...

    @property
    def text(self) -> str: ...

    @property
    def content(self) -> bytes: ...

    def json(self) -> Any: ...


class TransportFailure(Exception):
    """The exchange failed below HTTP. `connect`: hived was not reached (nothing was sent);
    `timeout`: it did not answer (or accept) in time."""

    def __init__(self, reason: str, *, connect: bool = False, timeout: bool = False) -> None:
        super().__init__(reason)
        self.connect = connect
        self.timeout = timeout


class _Sent:
    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers


class Reply:
    """A whole answer (`request`), or one still arriving (`stream`: `iter_lines`, `read`)."""

    def __init__(self, resp: http.client.HTTPResponse, sent: Mapping[str, str]) -> None:
        self.status_code = resp.status
        self.reason_phrase = resp.reason
        self.headers = resp.headers  # case-insensitive .get, as httpx's
        self.request = _Sent(sent)
        self._resp = resp
        self._content: bytes | None = None

    def read(self) -> bytes:
        if self._content is None:
            self._content = _guarded(self._resp.read)
        return self._content

    @property
    def content(self) -> bytes:
        return self.read()

    @property
    def text(self) -> str:
        return self.read().decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.read())

    def iter_lines(self) -> Iterator[str]:
        """The lines of a streamed answer as they come, without their line ends."""
        while line := _guarded(self._resp.readline):
            yield line.decode("utf-8", "replace").rstrip("\r\n")


class _Connection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("hived", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(min(CONNECT_TIMEOUT, self.timeout or CONNECT_TIMEOUT))
            sock.connect(self.socket_path)
            sock.settimeout(self.timeout)
        except TimeoutError:
            sock.close()
            raise TransportFailure("connection timed out", connect=True, timeout=True) from None
        except OSError as exc:
            sock.close()
            raise TransportFailure(exc.strerror or type(exc).__name__, connect=True) from None
        self.sock = sock

    def dropped(self) -> bool:
        """Closed by hived since the last answer (readable while idle: its EOF)."""
        return self.sock is not None and bool(select.select([self.sock], [], [], 0)[0])


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
        if conn.sock is not None:
            conn.sock.settimeout(conn.timeout)
        try:
            reply = _exchange(conn, method, _target(url, params), self.headers, json)
            reply.read()
        except BaseException:
            conn.close()
            raise
        if reply._resp.will_close:
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
    ) -> Iterator[Reply]:
        """An answer read as it comes, on a connection of its own (closed at the end); `timeout` as
        httpx takes it: (connect, read, write, pool)."""
        conn = _Connection(self.path, timeout[1])
        try:
            yield _exchange(conn, method, _target(url, params), {**self.headers, **(headers or {})}, None)
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _exchange(conn: _Connection, method: str, target: str, headers: Mapping[str, str], json: Any) -> Reply:
    sent = dict(headers)
    body = None
    if json is not None:  # as httpx encodes it
        body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        sent["Content-Type"] = "application/json"
    _guarded(lambda: conn.request(method, target, body=body, headers=sent))  # (connects first if need be)
    return Reply(_guarded(conn.getresponse), sent)


def _guarded(read: Any) -> Any:
    """`read()`, its failures as TransportFailure (a failed connect is one already)."""
    try:
        return read()
    except TimeoutError:
        raise TransportFailure("timed out", timeout=True) from None
    except (OSError, http.client.HTTPException) as exc:
        raise TransportFailure(str(exc) or type(exc).__name__) from None


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
