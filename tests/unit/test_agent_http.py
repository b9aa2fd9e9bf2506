"""hive-agent's HTTP client against a real (tiny) HTTP server on a Unix socket: connections are kept
alive and reused, one the server closed while idle is replaced without losing the request, and an
answer with `Connection: close` is not reused."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from hivectl.agent.http import READ_SIZE, HttpClient
from hivectl.endpoint import Endpoint


class Server:
    """Answers each POST with its body echoed; counts connections and requests."""

    def __init__(self, close_after_answer: bool = False) -> None:
        self.connections = 0
        self.requests: list[str] = []
        self.close_after_answer = close_after_answer
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while line := await reader.readline():
                path = line.split()[1].decode()
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.requests.append(path)
                extra = "Connection: close\r\n" if self.close_after_answer else ""
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body)
                await writer.drain()
                if self.close_after_answer:
                    break
        finally:
            writer.close()

    def drop_idle(self) -> None:
        for writer in self.writers:
            writer.close()


@contextlib.asynccontextmanager
async def served(tmp_path: Path, server: Server) -> AsyncIterator[HttpClient]:
    """A client of `server`, on a Unix socket; both closed at the end."""
    sock = tmp_path / "s.sock"
    srv = await asyncio.start_unix_server(server.handle, path=str(sock))
    client = HttpClient(Endpoint(socket=sock), timeout=5)
    try:
        yield client
    finally:
        await client.close()
        srv.close()


async def test_connections_are_kept_alive_and_reused(tmp_path: Path) -> None:
    server = Server()
    async with served(tmp_path, server) as client:
        for n in range(3):
            resp = await client.post(f"/p{n}", {"n": n})
            assert resp.status == 200 and resp.json() == {"n": n}
        assert server.connections == 1 and server.requests == ["/p0", "/p1", "/p2"]


async def test_a_connection_closed_while_idle_is_replaced(tmp_path: Path) -> None:
    server = Server()
    async with served(tmp_path, server) as client:
        await client.post("/a", {})
        server.drop_idle()  # as hived's keep-alive timeout does
        await asyncio.sleep(0)
        resp = await client.post("/b", {"x": 1})
        assert json.loads(resp.body) == {"x": 1}
        assert server.requests == ["/a", "/b"] and server.connections == 2


async def test_connection_close_is_honoured(tmp_path: Path) -> None:
    server = Server(close_after_answer=True)
    async with served(tmp_path, server) as client:
        for n in range(2):
            assert (await client.post("/p", {"n": n})).json() == {"n": n}
        assert server.connections == 2


async def test_bodies_orjson_refuses_go_as_json_writes_them(tmp_path: Path) -> None:
    """orjson writes the bodies; an integer beyond 64 bits (which it refuses) goes as json writes it,
    and keys that are not text become text, as json makes them."""
    server = Server()
    async with served(tmp_path, server) as client:
        resp = await client.post("/big", {"n": 2**70, "m": {1: "one"}})
        assert resp.json() == {"n": 2**70, "m": {"1": "one"}}


async def test_reads_stay_under_a_mapping_of_their_own_and_a_longer_answer_is_whole(tmp_path: Path) -> None:
    server = Server()
    async with served(tmp_path, server) as client:
        big = "x" * (5 * READ_SIZE)  # an answer several reads long
        resp = await client.post("/big", {"s": big})
        assert resp.json() == {"s": big}
        (_reader, writer), *_ = client._idle
        assert writer.transport.max_size == READ_SIZE < 128 * 1024  # (glibc's mmap threshold)
