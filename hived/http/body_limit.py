"""Request size limit: uvicorn has none of its own. A body over `max_bytes` is refused with 413
before the route sees it (by Content-Length, or while a chunked body arrives)."""

from __future__ import annotations

from typing import Any

from hived.auth.middleware import refuse


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE"):
            await self.app(scope, receive, send)
            return
        message = f"request body: over hived's max_request_bytes ({self.max_bytes})"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await refuse(send, 413, message)
            return
        if length is not None:
            await self.app(scope, receive, send)
            return
        chunks, size = [], 0  # no length given: read it all here, within the limit
        while True:
            event = await receive()
            if event["type"] != "http.request":
                return
            chunks.append(event.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await refuse(send, 413, message)
                return
            if not event.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
