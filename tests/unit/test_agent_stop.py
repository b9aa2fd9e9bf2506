"""Item 19 of the hardening issue: a clean stop of an agent must not wait out hived's `stop_grace`.

While hived shuts down it answers every long-poll at once (so that its HTTP server can finish), then
refuses connections. An agent told to stop in that state has to stop at once, and must not poll
`/work` in a tight loop meanwhile."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

from hivectl.agent.connection import Connection
from hivectl.agent.handlers import AttemptOutcome, StopRequest
from hivectl.agent.http import Response
from hivectl.agent.runtime import AgentRuntime, Session
from hivectl.agent.wire import Lease
from hivectl.endpoint import Endpoint
from tests.unit.test_agent_runtime import AGENT, FakeHived, Harness, reply


class Idle:
    async def run(self, lease: Lease, stop: StopRequest) -> AttemptOutcome:
        raise AssertionError("no task is given in these tests")


def refusing_socket(path: Path) -> socket.socket:
    """A Unix socket that exists but does not listen: connecting to it is refused at once."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    return sock


async def test_item19_a_stop_while_hived_refuses_connections_is_prompt(tmp_path: Path) -> None:
    """A refused connect fails without yielding, so a cancel can land just after it; asyncio.wait_for
    of Python 3.11 then dropped the cancel and the agent went on retrying forever. The stop comes at
    every point of the first few event-loop turns, so the unlucky one is among them."""
    sock = refusing_socket(tmp_path / "hived.sock")
    try:
        for turns in range(40):
            conn = Connection(Endpoint(socket=tmp_path / "hived.sock"), timeout=5)
            runtime = AgentRuntime(conn, Session(AGENT, "worker", 1, 1, 0.1, Idle()), poll_wait=5)
            run = asyncio.create_task(runtime.run())
            for _ in range(turns):
                await asyncio.sleep(0)
            runtime.stopping.set()
            started = time.monotonic()
            done, _ = await asyncio.wait({run}, timeout=3)
            if not done:
                run.cancel()
            await conn.aclose()
            assert done, f"a stop {turns} loop turns after the start was not done after 3s"
            assert run.result() == 0 and time.monotonic() - started < 1.0
    finally:
        sock.close()


class ClosingHived(FakeHived):
    """hived shutting down: every long-poll is answered at once, with nothing."""

    async def post(self, path: str, payload: Any, timeout: float | None = None) -> Response:
        if path.endswith("/work"):
            await asyncio.sleep(0)  # a real request yields to the event loop
            self.work_requests.append(payload)
            return reply(200, {"tasks": [], "acks": [], "cancel": [], "status": self.status})
        return await super().post(path, payload, timeout)


async def test_item19_an_agent_does_not_busy_poll_a_hived_that_answers_at_once() -> None:
    h = Harness(poll_wait=5.0)
    h.hived = ClosingHived()
    h.conn.client = h.hived  # type: ignore[assignment]
    async with h:
        await asyncio.sleep(1.0)  # the time a poll loop has to show itself
        polls = len(h.hived.work_requests)
        h.runtime.stopping.set()
        assert await asyncio.wait_for(h.exit, 3) == 0  # type: ignore[arg-type]
    assert 1 <= polls <= 10, f"{polls} polls of /work in 1s against a hived answering at once"
