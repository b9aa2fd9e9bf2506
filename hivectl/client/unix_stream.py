"""An answer of hived read as it comes over its Unix socket (server-sent events: `hivectl events`,
`--watch`), on the standard library's http.client, on a connection of its own. Imported only by a
command that streams: whole answers take the lighter path of hivectl/client/unix_http.py."""

from __future__ import annotations

import contextlib
import http.client
import json as jsonlib
from collections.abc import Iterator, Mapping
from typing import Any

from hivectl.client.answers import Sent, TransportFailure, connect


class Streamed:
    """An answer still arriving: `iter_lines`, or `read` the rest."""

    def __init__(self, resp: http.client.HTTPResponse, sent: Mapping[str, str]) -> None:
        self.status_code = resp.status
        self.reason_phrase = resp.reason
        self.headers = resp.headers  # case-insensitive .get, as httpx's
        self.request = Sent(sent)
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
        """The lines of the answer as they come, without their line ends."""
        while line := _guarded(self._resp.readline):
            yield line.decode("utf-8", "replace").rstrip("\r\n")


class _Connection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("hived", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = connect(self.socket_path, self.timeout)
        self.sock.settimeout(self.timeout)


@contextlib.contextmanager
def stream(
    path: str, method: str, target: str, headers: Mapping[str, str], read_timeout: float | None
) -> Iterator[Streamed]:
    """The answer to one request, read as it comes; the connection is closed at the end."""
    conn = _Connection(path, read_timeout)
    try:
        _guarded(lambda: conn.request(method, target, headers=dict(headers)))
        yield Streamed(_guarded(conn.getresponse), headers)
    finally:
        conn.close()


def _guarded(read: Any) -> Any:
    """`read()`, its failures as TransportFailure (a failed connect is one already)."""
    try:
        return read()
    except TimeoutError:
        raise TransportFailure("timed out", timeout=True) from None
    except (OSError, http.client.HTTPException) as exc:
        raise TransportFailure(str(exc) or type(exc).__name__) from None
