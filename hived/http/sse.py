"""`GET /events`: the daemon's live events as server-sent events, resumable with Last-Event-ID."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from hived.http.deps import Daemon
from hived.model.schemas import MAX_OFFSET

router = APIRouter(tags=["daemon"])


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def events(
    orch: Daemon,
    follow: bool = Query(True, description="keep the stream open for new events"),
    since: int | None = Query(
        None, ge=0, le=MAX_OFFSET, description="events after this id (like Last-Event-ID)"
    ),
    last_event_id: str | None = Header(None),
) -> StreamingResponse:
    """Each event: `id:` (grows), `event:` its kind (`agent.status`, `task.completed`, ...), and
    `data:` a JSON object. Without `since`/Last-Event-ID the stream starts with the backlog kept
    in memory (the last 10,000 events)."""
    start = since if since is not None else int(last_event_id) if (last_event_id or "").isdigit() else 0
    bus = orch.events

    async def stream() -> AsyncIterator[bytes]:
        yield b": hived events\n\n"
        if not follow:
            for event in bus.since(start):
                yield _frame(event.id, event.kind, event.as_json())
            return
        async for event in bus.follow(start):
            if event is None:
                yield b": keep-alive\n\n"
                continue
            yield _frame(event.id, event.kind, event.as_json())

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _frame(event_id: int, kind: str, data: dict[str, object]) -> bytes:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data, default=str)}\n\n".encode()
