"""How the client fails: one exception per kind of failure; validation errors (hived's 422 answers,
and pydantic's errors of a value checked before it is sent) by hived.model.errors' one formatter."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from hivectl.endpoint import Endpoint
from hived.model.errors import format_errors

if TYPE_CHECKING:
    from hivectl.client.answers import Answer


class ClientError(Exception):
    """Any failure to get an answer from hived; the message is one line, fit for a user."""


class DaemonUnreachable(ClientError):
    """Nothing answers at the endpoint (no socket, connection refused, connection dropped)."""


class NotAuthorized(ClientError):
    """hived refused the token (HTTP 401 or 403)."""


class RequestTimeout(ClientError):
    """hived accepted the connection but did not answer in time."""


class WaitTimeout(ClientError):
    """A wait for a task or a run to end ran out of time; the task or run goes on."""


class ApiError(ClientError):
    """hived answered with an error (4xx, 5xx): `status` and its one-line `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail if status < 500 else f"hived failed (HTTP {status}): {detail}")
        self.status = status
        self.detail = detail


def error_detail(resp: Answer) -> str:
    """The daemon's `{"detail": ...}` on one line (a list of validation errors formatted as above)."""
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        detail = format_errors(detail)
    if not detail:
        detail = resp.text.strip() or resp.reason_phrase or f"HTTP {resp.status_code}"
    return " ".join(str(detail).split())


def check_response(resp: Answer) -> Answer:
    """`resp` if it succeeded, else the client error it means (read a streamed answer first)."""
    if resp.status_code < 400:
        return resp
    if resp.status_code in (401, 403):
        hint = "" if resp.request.headers.get("Authorization") else " (no token: set HIVE_TOKEN or --token)"
        raise NotAuthorized(f"not authorized: {error_detail(resp)}{hint}")
    raise ApiError(resp.status_code, error_detail(resp))


def unreachable(endpoint: Endpoint, reason: str) -> DaemonUnreachable:
    hint = (
        "start it with: hivectl daemon start" if endpoint.socket else "is hived listening there (--listen)?"
    )
    return DaemonUnreachable(f"cannot reach hived at {endpoint.describe()} ({reason}); {hint}")


@contextlib.contextmanager
def transport_errors(endpoint: Endpoint) -> Iterator[None]:
    """Transport failures (httpx's, or the Unix socket client's) as the client's errors: exit 3, or 1
    for a read timeout."""
    # A missing socket is the common case of "not running": say so without a connect attempt.
    if endpoint.socket is not None and not endpoint.socket.exists():
        raise unreachable(endpoint, "no socket")
    try:
        yield
    except Exception as exc:
        error = _transport_error(endpoint, exc)
        if error is None:
            raise
        raise error from None


def _transport_error(endpoint: Endpoint, exc: Exception) -> ClientError | None:
    from hivectl.client.answers import TransportFailure

    if isinstance(exc, TransportFailure):
        connect, timeout = exc.connect, exc.timeout
    elif "httpx" in sys.modules and isinstance(exc, sys.modules["httpx"].TransportError):
        httpx = sys.modules["httpx"]
        connect = isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError)
        timeout = isinstance(exc, httpx.TimeoutException)
    else:
        return None
    if timeout and not connect:
        return RequestTimeout(f"hived at {endpoint.describe()} did not answer in time")
    return unreachable(endpoint, "connection timed out" if timeout else str(exc) or type(exc).__name__)
