"""Where a client reaches hived: the Unix socket by default, `HIVE_URL` + `HIVE_TOKEN` over TCP."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hived.model import paths


@dataclass(frozen=True)
class Endpoint:
    socket: Path | None
    url: str | None = None
    token: str | None = None

    @classmethod
    def from_env(
        cls, socket: str | None = None, url: str | None = None, token: str | None = None
    ) -> Endpoint:
        url = url or os.environ.get("HIVE_URL") or None
        token = token or os.environ.get("HIVE_TOKEN") or None
        if url:
            return cls(socket=None, url=url.rstrip("/"), token=token)
        return cls(socket=Path(socket) if socket else paths.socket_path(), token=token)

    def describe(self) -> str:
        return self.url or f"unix:{self.socket}"

    def client_kwargs(self, timeout: float = 30.0) -> dict[str, Any]:
        """Arguments for `httpx.Client(**kw)`; use `async_client_kwargs` for `httpx.AsyncClient`.
        (httpx is imported here: hive-agent uses this module without it.)"""
        import httpx

        return self._kwargs(httpx.HTTPTransport, timeout)

    def async_client_kwargs(self, timeout: float = 30.0) -> dict[str, Any]:
        import httpx

        return self._kwargs(httpx.AsyncHTTPTransport, timeout)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _kwargs(self, transport_cls: Any, timeout: float) -> dict[str, Any]:
        headers = self.headers()
        if self.url:
            return {"base_url": self.url, "headers": headers, "timeout": timeout}
        return {
            "base_url": "http://hived",
            # No TLS on a Unix socket: without verify=False httpx loads the CA bundle (~15 ms).
            "transport": transport_cls(uds=str(self.socket), verify=False),
            "headers": headers,
            "timeout": timeout,
        }
