"""A small HTTP/1.1 client on asyncio streams, for hive-agent: POST a JSON body to hived over its Unix
socket or over TCP (TLS for https://), one connection per request. The standard library only, so an
idle agent stays small; the CLI and TUI use httpx."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hivectl.endpoint import Endpoint

MAX_HEADER_LINES = 100
MAX_BODY = 64 * 2**20


class TransportError(Exception):
    """hived could not be reached, or the connection broke before a whole answer arrived."""


@dataclass
class Response:
    status: int
    reason: str
    body: bytes

    def json(self) -> Any:
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
        self.headers = {"Content-Type": "application/json", "Connection": "close"}
        if endpoint.token:
            self.headers["Authorization"] = f"Bearer {endpoint.token}"

    async def post(self, path: str, payload: Any, timeout: float | None = None) -> Response:
        try:
            return await asyncio.wait_for(self._post(path, payload), timeout or self.timeout)
        except TimeoutError:
            raise TransportError(f"no answer within {timeout or self.timeout:g}s") from None
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None

    async def _post(self, path: str, payload: Any) -> Response:
        if self.endpoint.url:
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.tls or None, server_hostname=self.host if self.tls else None
            )
        else:
            reader, writer = await asyncio.open_unix_connection(str(self.endpoint.socket))
        try:
            body = json.dumps(payload).encode()
            lines = [f"POST {self.base}{path} HTTP/1.1", f"Host: {self.host_header}"]
            lines += [f"{k}: {v}" for k, v in self.headers.items()] + [f"Content-Length: {len(body)}", "", ""]
            writer.write("\r\n".join(lines).encode("latin-1") + body)
            await writer.drain()
            return await _read_response(reader)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> Response:
    status_line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
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
    if "content-length" in headers:
        length = int(headers["content-length"])
        if length > MAX_BODY:
            raise ValueError(f"answer of {length} bytes is too large")
        body = await reader.readexactly(length)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.read(MAX_BODY)
    return Response(int(code), reason, body)


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
