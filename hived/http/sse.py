"""`GET /events`: the daemon's live events as server-sent events, resumable with Last-Event-ID.

Each event's frame is encoded once (`Event.frame`), whatever the number of streams. The streams are
bounded: at most `max_event_streams` at once on the socket (503 past it) and
`max_event_streams_per_token` per token on TCP (429); a stream that falls more than
`max_event_lag` events behind (a client that reads too slowly, or not at all) gets a last comment
line telling it to reconnect with Last-Event-ID and is closed, even while its writes are stuck. Its
task ends when the client leaves: nothing runs for a stream nobody reads."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from starlette.routing import Route

from hived.auth.middleware import refuse
from hived.events import EventBus
from hived.http.admission import PerTurn
from hived.http.deps import Daemon
from hived.model.schemas import MAX_OFFSET

router = APIRouter(tags=["daemon"])
KEEP_ALIVE = b": keep-alive\n\n"
CHUNK = 100  # events per write
ABORT = "hived.abort"  # scope["state"] key: closes the connection at once (set by hived's protocols)


@dataclass
class StreamLimits:
    """The bounds of one listener's `/events` streams, and who holds them."""

    max_lag: int = 5000  # under the 10,000 events kept: who reconnects loses none
    max_streams: int = 256  # on this listener, whoever asks
    per_token: int = 16  # per token (TCP)
    idle: float = 15.0  # a keep-alive comment after this much silence
    check: float = 1.0  # how often a stuck write looks at how far behind its stream is
    grace: float = 5.0  # how long a write may stay stuck once its stream is too far behind
    open: Counter[str] = field(default_factory=Counter)
    # How many streams push their backlog at once, each for at most `replay_hold` s a chunk: hundreds
    # of clients connecting together would otherwise each push up to 10,000 old events in the same
    # turns of the event loop (one answer of the socket took a second). A client that does not read
    # gives its place back after `replay_hold`: it cannot hold back the others.
    replaying: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
    replay_hold: float = 0.05
    # How many streams start in one turn of the loop: 500 that connect together start in 16 turns,
    # with other requests' work between them (hived.http.admission).
    starting: PerTurn = field(default_factory=lambda: PerTurn(32))

    def refusal(self, holder: str | None) -> tuple[int, str] | None:
        if holder is not None and self.open[holder] >= self.per_token:
            return 429, f"this token already has {self.per_token} event streams (max_event_streams_per_token)"
        if self.open.total() >= self.max_streams:
            return 503, f"hived serves {self.max_streams} event streams (max_event_streams): retry later"
        return None


class TooSlow(Exception):
    pass


@router.get(
    "/events",
    response_class=Response,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def events(
    orch: Daemon,
    request: Request,
    follow: bool = Query(True, description="keep the stream open for new events"),
    since: int | None = Query(
        None, ge=0, le=MAX_OFFSET, description="events after this id (like Last-Event-ID)"
    ),
    last_event_id: str | None = Header(None),
) -> Response:
    """Each event: `id:` (grows), `event:` its kind (`agent.status`, `task.completed`, ...), and
    `data:` a JSON object. Without `since`/Last-Event-ID the stream starts with the backlog kept
    in memory (the last 10,000 events)."""
    start = since if since is not None else int(last_event_id) if (last_event_id or "").isdigit() else 0
    limits: StreamLimits = request.app.state.streams
    return EventStream(orch.events, limits, start, follow)


EVENTS_ROUTE = Route("/events", lambda _request: None, methods=["GET"], include_in_schema=False)
PLAIN_FOLLOW = {b"true": True, b"false": False, b"1": True, b"0": False}


def plain_query(query: bytes) -> tuple[bool, int | None] | None:
    """`follow` and `since` of a plain query string (`follow=true|false|1|0`, `since=DIGITS` in
    range, each at most once), as the route would read them; None for anything else, which the
    FastAPI route then reads (and answers 422 for, naming the field)."""
    follow, since, seen = True, None, set()
    for pair in query.split(b"&") if query else ():
        name, _, value = pair.partition(b"=")
        if name in seen:
            return None
        seen.add(name)
        if name == b"follow" and value in PLAIN_FOLLOW:
            follow = PLAIN_FOLLOW[value]
        elif name == b"since" and value.isdigit() and len(value) <= 19 and int(value) <= MAX_OFFSET:
            since = int(value)
        else:
            return None
    return follow, since


class LeanEvents:
    """`GET /events` without FastAPI's per-request work (routing past every route, solving the
    dependencies, validating the query): 500 clients that connect at once pay for their streams
    only. Its query string is read by `plain_query`; any other goes through the FastAPI route."""

    def __init__(self, bus: EventBus, limits: StreamLimits) -> None:
        self.bus, self.limits = bus, limits

    def wants(self, scope: dict[str, Any]) -> bool:
        return scope["path"] == "/events" and plain_query(scope["query_string"]) is not None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["route"] = EVENTS_ROUTE  # the route the metrics name
        plain = plain_query(scope["query_string"])
        assert plain is not None
        follow, since = plain
        last = next((v for k, v in scope["headers"] if k == b"last-event-id"), b"").decode("latin-1")
        start = since if since is not None else int(last) if last.isdigit() else 0
        await EventStream(self.bus, self.limits, start, follow)(scope, receive, send)


class EventStream(Response):
    media_type = "text/event-stream"

    def __init__(self, bus: EventBus, limits: StreamLimits, start: int, follow: bool) -> None:
        self.status_code, self.background = 200, None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        self.bus, self.limits, self.position, self.follow = bus, limits, start, follow

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.limits.starting()
        token = scope.get("state", {}).get("token")
        holder = getattr(token, "id", None)
        if self.follow and (why := self.limits.refusal(holder)):
            await refuse(send, *why, [(b"retry-after", b"5")])
            return
        key = holder or ""
        self.limits.open[key] += 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await self._until_gone(scope, receive, send)
        finally:
            self.limits.open[key] -= 1
            if self.limits.open[key] <= 0:
                del self.limits.open[key]

    async def _until_gone(self, scope: Any, receive: Any, send: Any) -> None:
        """Write until the stream ends, the client leaves or falls too far behind; nothing is left running."""
        writer = asyncio.ensure_future(self._write(send))
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({writer, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (writer, gone):
                task.cancel()
            await asyncio.gather(writer, gone, return_exceptions=True)
        if writer.done() and not writer.cancelled() and isinstance(writer.exception(), TooSlow):
            abort = scope.get("state", {}).get(ABORT)
            if abort is not None:
                abort()  # its writes are stuck: no polite end can get through
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_disconnected(receive), 5)  # uvicorn sees it gone

    async def _write(self, send: Any) -> None:
        await self._send(send, b": hived events\n\n", self.bus.last_id)
        if not self.follow:
            batch = self.bus.since(self.position)
            await self._send(send, b"".join(e.frame for e in batch), self.bus.last_id, more=False)
            return
        opened = self.bus.last_id  # the backlog it asked for is not lag; what came after and is unsent is
        # The backlog in shared blocks of 1,000 events (joined once for every stream), one place of
        # `replaying` per write: hundreds of streams opened at once each take short turns of the loop.
        while (block := self.bus.block_after(self.position)) is not None:
            await self._send(send, block[0], max(block[1], opened), gate=self.limits.replaying)
            self.position = block[1]
            if await self._too_far_behind(send, opened):
                return
        # Then a chunk at a time (what waits in the transport stays small), joined once for every
        # stream at the same place.
        while True:
            chunk = self.bus.chunk_after(self.position, CHUNK)
            if chunk is None:
                if not await self.bus.more_after(self.position, self.limits.idle):
                    await self._send(send, KEEP_ALIVE, self.bus.last_id)
                continue
            data, first, upto = chunk
            gate = self.limits.replaying if first <= opened else None  # the backlog
            await self._send(send, data, max(upto, opened), gate=gate)
            self.position = upto
            if await self._too_far_behind(send, opened):
                return

    async def _too_far_behind(self, send: Any, opened: int) -> bool:
        """Past `max_lag` events behind: a last comment telling it to reconnect, and True."""
        if (behind := self.bus.behind(max(self.position, opened))) <= self.limits.max_lag:
            return False
        note = (
            f": hived: this stream is {behind} events behind (max_event_lag "
            f"{self.limits.max_lag}); reconnect with Last-Event-ID: {self.position}\n\n"
        )
        await self._send(send, note.encode(), self.bus.last_id, more=False)
        return True

    async def _send(
        self, send: Any, body: bytes, upto: int, more: bool = True, gate: asyncio.Semaphore | None = None
    ) -> None:
        """Send (holding a place of `gate`, if given, until the write is through or `replay_hold`
        passed). A write stuck while more than `max_lag` events came after `upto` gets `grace` s to
        get through (then the stream ends politely), else TooSlow: the client does not read."""
        if gate is not None:
            await gate.acquire()
        sending = asyncio.ensure_future(send({"type": "http.response.body", "body": body, "more_body": more}))
        lagging = 0.0
        try:
            if gate is not None:
                try:
                    await asyncio.wait({sending}, timeout=self.limits.replay_hold)
                finally:
                    gate.release()
            while not (await asyncio.wait({sending}, timeout=self.limits.check))[0]:
                if self.bus.behind(upto) <= self.limits.max_lag:
                    lagging = 0.0
                elif not lagging:
                    lagging = time.monotonic()
                elif time.monotonic() - lagging > self.limits.grace:
                    raise TooSlow
            sending.result()
        finally:
            if not sending.done():
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sending


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
