"""What the client reads of hived's answers, whichever way they came (hivectl/client/unix_http.py,
hivectl/client/unix_stream.py, or httpx over TCP), how a failed exchange is told, and the connect
to hived's socket both Unix paths make."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any, Protocol

CONNECT_TIMEOUT = 10.0


class Answer(Protocol):
    """What the client reads of an answer: httpx.Response, `Reply` and `Streamed` all have it."""

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


class Sent:
    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers


def connect(path: str, timeout: float | None) -> socket.socket:
    """A connection to hived's socket at `path`; not reached within CONNECT_TIMEOUT (or `timeout`,
    if shorter) or refused: a TransportFailure that says nothing was sent."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(min(CONNECT_TIMEOUT, timeout or CONNECT_TIMEOUT))
        sock.connect(path)
    except TimeoutError:
        sock.close()
        raise TransportFailure("connection timed out", connect=True, timeout=True) from None
    except OSError as exc:
        sock.close()
        raise TransportFailure(exc.strerror or type(exc).__name__, connect=True) from None
    return sock
