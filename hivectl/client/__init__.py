"""The one client library of hived, shared by hivectl, the TUI and the benches: `Client` (sync) and
`AsyncClient` with one method per route, returning the wire schemas of `hived.model`; `events()`
(server-sent events, resumed across a reconnect), `wait_task()` / `wait_run()`; failures as
exceptions (never an HTTP status to check), their messages one line each.

    routes.py   every request, described once (`Routes`), sent by both clients
    errors.py   the exceptions, and the one formatter of validation errors
    polling.py  when a wait asks again, and how long it rides out an unreachable hived
    sse.py      server-sent events, decoded
"""

from typing import TYPE_CHECKING, Any

from hivectl.client.errors import (
    ApiError,
    ClientError,
    DaemonUnreachable,
    NotAuthorized,
    RequestTimeout,
    WaitTimeout,
)
from hivectl.client.polling import PATIENCE, RUN_FINAL, TASK_FINAL
from hivectl.client.routes import Applied, Call, LogChunk, Routes
from hivectl.client.sse import Event
from hived.model.errors import clean_message, format_errors

if TYPE_CHECKING:
    from hivectl.client.aio import AsyncClient
    from hivectl.client.sync import Client


def __getattr__(name: str) -> Any:
    # The clients on first use: httpx (and asyncio for AsyncClient) are most of a command's start-up,
    # and `hivectl --help` or a usage error needs neither.
    if name == "AsyncClient":
        from hivectl.client.aio import AsyncClient

        return AsyncClient
    if name == "Client":
        from hivectl.client.sync import Client

        return Client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PATIENCE",
    "RUN_FINAL",
    "TASK_FINAL",
    "ApiError",
    "Applied",
    "AsyncClient",
    "Call",
    "Client",
    "ClientError",
    "DaemonUnreachable",
    "Event",
    "LogChunk",
    "NotAuthorized",
    "RequestTimeout",
    "Routes",
    "WaitTimeout",
    "clean_message",
    "format_errors",
]
