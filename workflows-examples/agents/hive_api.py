"""The few calls an agent's script makes to hived, on the standard library only: the run's shared
context (read, compare-and-set). hive-agent gives every handler HIVE_SOCKET (or HIVE_URL) and, for
a workflow step, HIVE_RUN_ID."""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import quote, urlsplit


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("hived")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def request(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    if url := os.environ.get("HIVE_URL"):
        parts = urlsplit(url)
        conn: http.client.HTTPConnection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    else:
        conn = _UnixConnection(os.environ["HIVE_SOCKET"])
    headers = {"Content-Type": "application/json"}
    if token := os.environ.get("HIVE_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else None


def context_path(key: str) -> str:
    return f"/runs/{os.environ['HIVE_RUN_ID']}/context/{quote(key, safe='')}"


def update_context(key: str, change: Any, attempts: int = 50) -> Any:
    """Read-modify-write of one key with compare-and-set: `change(old or None)` gives the new value;
    on a conflict (another agent wrote first) read again and retry."""
    for _ in range(attempts):
        status, entry = request("GET", context_path(key))
        old, version = (entry["value"], entry["version"]) if status == 200 else (None, 0)
        new = change(old)
        status, body = request("PUT", context_path(key), {"value": new, "expected_version": version})
        if status == 200:
            return new
        if status != 409:
            raise RuntimeError(f"context {key}: {status} {body}")
    raise RuntimeError(f"context {key}: still conflicting after {attempts} attempts")


def get_context(key: str) -> Any:
    status, entry = request("GET", context_path(key))
    return entry["value"] if status == 200 else None
