"""What links a `tty: true` attempt with hived: the agent tells hived where the attempt's terminal is
(`started`) and when it waits for input (`waiting`) or runs again (`running`), with
`POST /agents/{id}/terminal`; hived sends the lines typed with `hivectl task send` in its replies to
the long-poll (`input`), as it sends cancels, and they are typed into the session in order."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from hivectl.agent.connection import AgentGone, Connection, Refused
from hivectl.agent.http import TransportError
from hivectl.agent.tty_options import TerminalSink
from hivectl.agent.wire import Lease

log = logging.getLogger("hive-agent")


class TakesInput(Protocol):
    async def send_input(self, task_id: str, text: str) -> bool: ...


class TerminalLink:
    def __init__(self, conn: Connection, agent_id: str, incarnation: int) -> None:
        self.conn, self.agent_id, self.incarnation = conn, agent_id, incarnation
        self.reports = asyncio.Lock()  # FIFO: hived hears `waiting` and `running` in their order
        self.typing = asyncio.Lock()
        self.pending: set[asyncio.Task[None]] = set()

    def sink(self, lease: Lease) -> TerminalSink:
        def report(event: str, details: dict[str, Any]) -> None:
            body = {"incarnation": self.incarnation, "task_id": lease.task_id, "lease": lease.lease}
            self._spawn(self._report({**body, "event": event, **details}))

        return report

    def deliver(self, inputs: list[dict[str, str]], handler: Any) -> None:
        for item in inputs:
            self._spawn(self._type(handler, item["task_id"], item["text"]))

    def _spawn(self, job: Any) -> None:
        task = asyncio.create_task(job)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _report(self, body: dict[str, Any]) -> None:
        async with self.reports:
            try:
                await self.conn.post(f"/agents/{self.agent_id}/terminal", body, lambda data: data)
            except (AgentGone, Refused, TransportError) as exc:
                log.warning("task %s: could not report its terminal (%s)", body["task_id"], exc)

    async def _type(self, handler: Any, task_id: str, text: str) -> None:
        async with self.typing:
            send = getattr(handler, "send_input", None)
            if send is None or not await send(task_id, text):
                log.warning("task %s: input for a terminal this agent does not run: dropped", task_id)
            else:
                log.info("task %s: typed a line of input (%d characters)", task_id, len(text))
