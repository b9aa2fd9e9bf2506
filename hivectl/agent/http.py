"""A small HTTP/1.1 client on asyncio streams, for hive-agent: POST a JSON body to hived over its Unix
socket or over TCP (TLS for https://), keeping connections alive between requests (no connect or
TLS handshake per heartbeat; a connection hived closed while idle is replaced at once). The
standard library and orjson (bodies in a fraction of json's time; json for what orjson refuses), so
an idle agent stays small; the CLI and TUI use httpx."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from hivectl.endpoint import Endpoint

MAX_HEADER_LINES = 100
MAX_BODY = 64 * 2**20
MAX_IDLE = 4  # kept-alive connections per client (a long poll, a report, a heartbeat at once)
# What one read of a connection asks for: asyncio's 256 KiB is over glibc's threshold for a mapping
# of its own, so each read of an answer mapped, shrank and unmapped its buffer (three system calls
# and a page fault); an answer over it takes more reads.
READ_SIZE = 64 * 1024


class TransportError(Exception):
    """hived could not be reached, or the connection broke before a whole answer arrived."""


@dataclass
class Response:
    status: int
    reason: str
    body: bytes

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class HttpClient:
    def __init__(self, endpoint: Endpoint, timeout: float = 35.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        if endpoint.url:
            parts = urlsplit(endpoint.url)
            self.tls = parts.scheme == "https"
            self.host = parts.hostname or "localhost"
            self.port = parts.port or (443 if self.tls else 80)
            self.base = parts.path.rstrip("/")
            self.host_header = parts.netloc
        else:
            self.tls, self.host, self.port, self.base, self.host_header = False, "", 0, "", "hived"
        self.headers = {"Content-Type": "application/json"}
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []  # kept-alive connections
        if endpoint.token:
            self.headers["Authorization"] = f"Bearer {endpoint.token}"

    async def post(self, path: str, payload: Any, timeout: float | None = None) -> Response:
        limit = timeout or self.timeout
        # Not asyncio.wait_for: on Python 3.11 it drops a cancellation that arrives just after the
        # request ended (a refused connect ends without yielding), and the caller then never stops.
        try:
            async with asyncio.timeout(limit):
                return await self._post(path, payload)
        except TimeoutError:
            raise TransportError(f"no answer within {limit:g}s") from None
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None

    async def _post(self, path: str, payload: Any) -> Response:
        body = _dumps(payload)
        lines = [f"POST {self.base}{path} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()] + [f"Content-Length: {len(body)}", "", ""]
        request = "\r\n".join(lines).encode("latin-1") + body
        while self._idle:  # a kept-alive connection; one hived closed meanwhile never saw the request
            reader, writer = self._idle.pop()
            if writer.is_closing() or reader.at_eof():
                writer.close()
                continue
            try:
                return await self._exchange(reader, writer, request)
            except _Stale:
                continue
        reader, writer = await self._connect()
        try:
            return await self._exchange(reader, writer, request)
        except _Stale:
            raise asyncio.IncompleteReadError(b"", None) from None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.endpoint.url:
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.tls or None, server_hostname=self.host if self.tls else None
            )
        else:
            reader, writer = await asyncio.open_unix_connection(str(self.endpoint.socket))
        if hasattr(writer.transport, "max_size"):  # (a plain socket's transport; TLS reads its own way)
            writer.transport.max_size = READ_SIZE
        return reader, writer

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> Response:
        """One request and its answer; the connection goes back to the idle list if both sides keep
        it open, and is closed otherwise (errors and cancellations included)."""
        keep = False
        try:
            writer.write(request)
            await writer.drain()
            first = await reader.readline()
            if not first:
                raise _Stale
            response, keep = await _read_response(reader, first)
            return response
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise _Stale from exc
        finally:
            if keep and len(self._idle) < MAX_IDLE:
                self._idle.append((reader, writer))
            else:
                writer.close()

    async def close(self) -> None:
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class _Stale(Exception):
    """The connection was closed before any answer: the request was not handled; send it anew."""


async def _read_response(reader: asyncio.StreamReader, first: bytes) -> tuple[Response, bool]:
    """The answer, and whether the connection may carry another request."""
    status_line = first.decode("latin-1").rstrip("\r\n")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not code.isdigit():
        raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise ValueError("too many header lines")
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        length = int(headers["content-length"])
        if length > MAX_BODY:
            raise ValueError(f"answer of {length} bytes is too large")
        body = await reader.readexactly(length)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body, keep = await reader.read(MAX_BODY), False  # the answer ends with the connection
    return Response(int(code), reason, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readline()  # the blank line after the last chunk (no trailers from hived)
            return b"".join(parts)
        total += size
        if total > MAX_BODY:
            raise ValueError("chunked answer too large")
        parts.append(await reader.readexactly(size))
        await reader.readline()


def _dumps(payload: Any) -> bytes:
    try:
        return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # an integer beyond 64 bits: json writes it
        return json.dumps(payload).encode()
