"""One send per response: the writes of one loop turn reach the socket as one write."""

from __future__ import annotations

import asyncio
from typing import Any

from hived.http.corked import Corked


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
