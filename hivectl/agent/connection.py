"""The agent's side of the agent protocol: register, heartbeat and work, as JSON POSTs to hived.

Every call is retried while hived is unreachable (socket missing, connection refused, a timeout) or
answers 5xx/429, with a backoff from 0.1 s doubling to 5 s: a restart of hived costs the agent nothing,
and results are never dropped on the way. 404 and 409 on the agent's own routes mean hived no longer
knows this agent (deleted, or superseded by a newer incarnation): `AgentGone`. Any other 4xx is a
`Refused` that retrying cannot fix.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hivectl.agent.http import HttpClient, Response, TransportError
from hivectl.agent.wire import (
    HeartbeatRequest,
    HeartbeatResponse,
    RegisterRequest,
    RegisterResponse,
    WireError,
    WorkRequest,
    WorkResponse,
)
from hivectl.endpoint import Endpoint

log = logging.getLogger("hive-agent")
T = TypeVar("T")

BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 5.0
RETRIED_STATUS = {429, 500, 502, 503, 504}
STILL_DOWN_EVERY = 60.0  # how often to repeat "still unreachable" in the log


class AgentGone(Exception):
    """hived answered 404 or 409 for this agent: it was deleted, stopped, or another incarnation took
    over."""


class Refused(Exception):
    """hived refused a request in a way that retrying cannot fix (bad request, not authorized)."""


def next_backoff(delay: float) -> float:
    return min(delay * 2, BACKOFF_MAX)


class Connection:
    def __init__(self, endpoint: Endpoint, timeout: float = 35.0) -> None:
        self.endpoint = endpoint
        self.client = HttpClient(endpoint, timeout=timeout)
        self._down_since: float | None = None
        self._down_logged = 0.0

    async def aclose(self) -> None:
        """Close the kept-alive connections."""
        await self.client.close()

    async def register(self, request: RegisterRequest) -> RegisterResponse:
        return await self.post("/agents/register", request.to_json(), RegisterResponse.from_json)

    async def heartbeat(
        self, agent_id: str, request: HeartbeatRequest, timeout: float | None = None
    ) -> HeartbeatResponse:
        path = f"/agents/{agent_id}/heartbeat"
        return await self.post(path, request.to_json(), HeartbeatResponse.from_json, timeout=timeout)

    async def work(
        self,
        agent_id: str,
        request: WorkRequest,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> WorkResponse:
        path = f"/agents/{agent_id}/work"
        return await self.post(
            path, request.to_json(), WorkResponse.from_json, timeout=timeout, deadline=deadline
        )

    async def post(
        self,
        path: str,
        payload: Any,
        parse: Callable[[Any], T],
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> T:
        """POST `payload` until hived answers for good. `deadline` (time.monotonic) bounds the retries:
        past it the last error is raised."""
        delay = BACKOFF_INITIAL
        while True:
            try:
                resp = await self.client.post(path, payload, timeout=timeout)
            except TransportError as exc:
                self._note_down(str(exc))
                if deadline is not None and time.monotonic() + delay > deadline:
                    raise
            else:
                self._note_up()
                if resp.status < 400:
                    return _parse(resp, parse, path)
                detail = _detail(resp)
                if resp.status in (404, 409):
                    raise AgentGone(detail)
                if resp.status not in RETRIED_STATUS:
                    raise Refused(f"POST {path}: HTTP {resp.status}: {detail}")
                log.warning("POST %s: HTTP %d: %s; retrying in %.1fs", path, resp.status, detail, delay)
                if deadline is not None and time.monotonic() + delay > deadline:
                    raise Refused(f"POST {path}: HTTP {resp.status}: {detail}")
            await asyncio.sleep(delay)
            delay = next_backoff(delay)

    def _note_down(self, error: str) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = self._down_logged = now
            log.warning("hived unreachable at %s (%s); retrying", self.endpoint.describe(), error)
        elif now - self._down_logged >= STILL_DOWN_EVERY:
            self._down_logged = now
            log.warning("hived still unreachable after %.0fs (%s)", now - self._down_since, error)

    def down_for(self) -> float:
        """Seconds since hived stopped answering (0 while it answers)."""
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    def _note_up(self) -> None:
        if self._down_since is not None:
            log.info("hived reachable again after %.1fs", time.monotonic() - self._down_since)
            self._down_since = None


def _detail(resp: Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300] or resp.reason
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, str) else str(detail)[:300]
    return str(body)[:300]


def _parse(resp: Response, parse: Callable[[Any], T], path: str) -> T:
    try:
        return parse(resp.json())
    except (ValueError, WireError) as exc:
        raise Refused(f"POST {path}: unexpected answer from hived: {str(exc)[:300]}") from None
