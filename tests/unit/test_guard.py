"""HeaderDeadline (hived/http/guard.py) on an injected clock: one timer per connection, moved by each
request's steps; an incomplete request is closed `header_timeout` s after it began, however long
the timer armed for an earlier request had left."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from hived.http.guard import guarded
from tests.unit.test_corked import Transport

REQUEST = b"GET / HTTP/1.1\r\nHost: hive\r\n\r\n"


class Timer:
    def __init__(self, when: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.when, self.callback, self.args, self.cancelled = when, callback, args, False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """The protocol's loop: time and timers by hand, tasks on the real loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.now, self.timers = loop, 0.0, []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(self.now + delay, callback, args)
        self.timers.append(timer)
        return timer

    def call_soon(self, callback: Callable[..., None], *args: Any) -> Any:
        return self.loop.call_soon(callback, *args)

    def create_task(self, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        return self.loop.create_task(coro, **kw)

    def advance(self, to: float) -> None:
        self.now = to
        for timer in sorted(self.timers, key=lambda t: t.when):
            if timer.when <= to and not timer.cancelled and timer in self.timers:
                self.timers.remove(timer)
                timer.callback(*timer.args)

    def pending(self, name: str) -> list[Timer]:
        return [t for t in self.timers if not t.cancelled and getattr(t.callback, "__name__", "") == name]


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def test_one_timer_serves_every_request_and_an_incomplete_one_is_closed_in_time() -> None:
    config = uvicorn.Config(
        app, loop="none", http="httptools", lifespan="off", log_level="warning", timeout_keep_alive=100
    )
    config.load()
    clock = Clock(asyncio.get_running_loop())
    protocol = guarded(HttpToolsProtocol, 10.0)(
        config=config, server_state=ServerState(), app_state={}, _loop=clock
    )
    raw = Transport()
    protocol.connection_made(raw)  # type: ignore[arg-type]
    for _ in range(100):  # complete requests: no timer of their own
        protocol.data_received(REQUEST)
        for _ in range(5):
            await asyncio.sleep(0)
    assert len(raw.writes) == 100
    assert len(clock.pending("_check")) == 1  # the connection's one timer, armed at its start (due at 10)
    clock.advance(9.0)
    protocol.data_received(b"GET / HTTP/1.1\r\nHo")  # headers that stop coming
    clock.advance(10.0)  # the timer of the connection's start: the new request has 9 s left
    assert not raw.aborted
    assert [t.when for t in clock.pending("_check")] == [19.0]
    clock.advance(18.9)
    assert not raw.aborted
    clock.advance(19.0)
    assert raw.aborted
    protocol.connection_lost(None)
    assert clock.pending("_check") == []
