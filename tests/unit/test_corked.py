"""One send per response: the writes of one loop turn reach the socket as one write."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from hived.http.corked import Corked
from hived.http.guard import guarded


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str) -> Any:
        return {"peername": "here"}.get(name)


async def test_a_head_and_a_body_written_in_one_turn_leave_as_one_write() -> None:
    raw = Transport()
    corked = Corked(raw, asyncio.get_running_loop())
    corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
    corked.write(memoryview(b"{}"))
    assert raw.writes == []
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
    corked.write(b"next")
    await asyncio.sleep(0)
    assert raw.writes[1:] == [b"next"]
    assert corked.get_extra_info("peername") == "here"  # the rest goes to the transport


async def test_close_sends_what_is_pending_and_abort_drops_it() -> None:
    raw = Transport()
    corked = Corked(raw, asyncio.get_running_loop())
    corked.write(b"last words")
    corked.close()
    assert raw.writes == [b"last words"] and raw.closed
    raw = Transport()
    corked = Corked(raw, asyncio.get_running_loop())
    corked.write(b"never sent")
    corked.abort()
    await asyncio.sleep(0)
    assert raw.writes == [] and raw.aborted


async def test_a_complete_response_leaves_at_once() -> None:
    """Through uvicorn's protocol: when the app has sent the whole response, it is on the socket
    before the app's next step (not at the end of the loop's next turn, after whatever else it runs)."""
    raw = Transport()
    seen: dict[str, list[bytes]] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        seen["after head"] = list(raw.writes)
        await send({"type": "http.response.body", "body": b"{}"})
        seen["after body"] = list(raw.writes)

    config = uvicorn.Config(app, loop="none", http="httptools", lifespan="off", log_level="warning")
    config.load()
    protocol = guarded(HttpToolsProtocol, 10.0)(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(raw)  # type: ignore[arg-type]
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: hive\r\n\r\n")
    for _ in range(5):
        await asyncio.sleep(0)
    assert seen["after head"] == []  # the head waits for its body
    assert len(seen["after body"]) == 1 and seen["after body"][0].endswith(b"\r\n\r\n{}")
    protocol.connection_lost(None)
