"""The dashboard's line to hived: snapshots of the lists, the live `/events` stream (server-sent
events), and the operator's actions. The same endpoint settings as hivectl (socket, URL, token)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from hivectl.endpoint import Endpoint

SNAPSHOT_TASKS = 300
AGENT_PAGE = 500
SNAPSHOT_RUNS = 200
READ_TIMEOUT = 40.0  # hived sends a keep-alive every 15 s: silence this long means the link is dead


class ActionFailed(Exception):
    """hived refused an action; the message is its one-line reason."""


class Feed:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.http = httpx.AsyncClient(**endpoint.async_client_kwargs(10.0))

    async def close(self) -> None:
        await self.http.aclose()

    async def get(self, path: str, **params: Any) -> Any:
        resp = await self.http.get(path, params=params)
        resp.raise_for_status()
        return (
            resp.json() if resp.headers.get("content-type", "").startswith("application/json") else resp.text
        )

    async def agents(self) -> list[dict[str, Any]]:
        """Every agent, a page at a time (hived may cap pages lower than the fleet: max_page_size)."""
        items: list[dict[str, Any]] = []
        while True:
            page = await self.get("/agents", limit=AGENT_PAGE, offset=len(items))
            items += page["items"]
            if not page["items"] or len(items) >= page["total"]:
                return items

    async def snapshot(self) -> dict[str, Any]:
        """Everything the panes show, read now: status (with the event id to follow from), agents,
        recent tasks and runs (an older daemon without workflow routes: no runs)."""
        status = await self.get("/status")
        agents = await self.agents()
        tasks = (await self.get("/tasks", limit=SNAPSHOT_TASKS))["items"]
        try:
            runs = (await self.get("/runs", limit=SNAPSHOT_RUNS))["items"]
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise
            runs = []
        return {"status": status, "agents": agents, "tasks": tasks, "runs": runs}

    async def events(self, since: int) -> AsyncIterator[dict[str, Any]]:
        """Events after `since`, as they happen, until the connection ends (then the caller
        reconnects)."""
        params = {"since": since, "follow": "true"}
        timeout = httpx.Timeout(10.0, read=READ_TIMEOUT)
        async with self.http.stream("GET", "/events", params=params, timeout=timeout) as resp:
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[6:])

    async def act(self, method: str, path: str, body: Any = None, timeout: float = 120.0) -> Any:
        resp = await self.http.request(method, path, json=body, timeout=timeout)
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise ActionFailed(f"{resp.status_code}: {detail}")
        return resp.json()


def ref(value: str) -> str:
    return quote(value, safe="")
