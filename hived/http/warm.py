"""What hived builds before its socket accepts, so that no request pays for it: FastAPI builds each
included router's route state (dependants, a pydantic adapter per parameter and answer) when a
request is first matched against it, and cel-python loads its parser and environment on the first
expression (a quarter of a second). Measured by `bench/abuse.py`: the first `/events` requests,
matched past every router, stopped the event loop for the whole build while 500 streams connected."""

from __future__ import annotations

import asyncio
from typing import Any

UNMATCHED = "/.hived-warm-up"  # no route has it: matching it visits every route, and answers 404


async def warm_routes(app: Any) -> int:
    """Match a path no route has against the app's router (not its middlewares: no auth, no
    metrics): FastAPI builds every route's state on the way. Returns the status (404)."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": UNMATCHED,
        "raw_path": UNMATCHED.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"hived")],
        "client": None,
        "server": None,
        "state": {},
    }  # no "app": Starlette then answers the 404 itself rather than raise it to the app's handlers
    await app.router(scope, receive, send)
    return status


def warm_expressions() -> None:
    """Load cel-python and hived's environment, and run one expression through them."""
    from hived.model.expressions import evaluate

    evaluate("[1, 2].all(x, x > 0)", {})


async def warm(*apps: Any) -> None:
    await asyncio.to_thread(warm_expressions)
    for app in apps:
        await warm_routes(app)
