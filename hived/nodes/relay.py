"""Events across the nodes: what is published on one node's bus reaches the others (NOTIFY, a batch
per notification), so that `/events` on any node carries the whole cluster's events, `--wait` on one
node sees a task end on another, and a workflow run hears of its steps' tasks wherever they ran.

A relayed event is published on the receiving bus by its kind and fields, with `node` (the sender)
added: streamed, but no in-process subscriber sees it, except task ends, which are published typed
(with the task's row, read from the database, when a workflow run follows the task) and marked
`relayed` so that they are not sent on again. A notification can be lost while a node's connection
is down: the workflow engine's slow poll covers its steps (hived.nodes.cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from hived.events import Event, EventBus, TaskEnded
from hived.model.states import FINAL_TASK
from hived.store import tasks as task_store
from hived.store.db import Database
from hived.store.wire import MAX_PAYLOAD, Wire

log = logging.getLogger("hived.nodes")
LONGEST_TEXT = 300  # characters of a relayed field (an error, say): the full text is in the database


def _short(value: Any) -> Any:
    return value[:LONGEST_TEXT] if isinstance(value, str) else value


def packed(events: list[Event]) -> list[str]:
    """The events' wire forms, as JSON arrays of at most MAX_PAYLOAD bytes (with room for the
    envelope); an event too large alone is left out."""
    chunks, chunk, size = [], [], 2
    for event in events:
        text = json.dumps([event.kind, {k: _short(v) for k, v in event.data.items()}], default=str)
        if len(text) > MAX_PAYLOAD - 200:
            continue
        if size + len(text) + 1 > MAX_PAYLOAD - 200:
            chunks.append("[" + ",".join(chunk) + "]")
            chunk, size = [], 2
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        chunks.append("[" + ",".join(chunk) + "]")
    return chunks


class Relay:
    def __init__(self, db: Database, wire: Wire, events: EventBus, follows: Callable[[str], bool]) -> None:
        self.db = db
        self.wire = wire
        self.events = events
        self.follows = follows  # whether a workflow run here waits for this task
        self._task: asyncio.Task[None] | None = None
        self._reading: set[asyncio.Task[None]] = set()
        wire.on("events", self._received)

    def start(self) -> None:
        self._task = asyncio.create_task(self._send_loop(), name="nodes-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _send_loop(self) -> None:
        async for batch in self.events.batches(self.events.last_id, idle=60.0, most=500):
            mine = [e for e in batch if e.typed is not None and not getattr(e.typed, "relayed", False)]
            for chunk in packed(mine):
                await self.wire.send("events", {"e": chunk})

    def _received(self, sender: str, body: dict[str, Any]) -> None:
        try:
            events = json.loads(body["e"])
        except (KeyError, TypeError, ValueError):
            return
        for kind, data in events:
            status = kind.removeprefix("task.")
            if status in FINAL_TASK and isinstance(data.get("task_id"), str):
                self._task_ended(data, status)
            else:
                self.events.publish(kind, **data, node=sender)

    def _task_ended(self, data: dict[str, Any], status: str) -> None:
        task_id, agent_id, error = data["task_id"], data.get("agent_id"), data.get("error")
        if not self.follows(task_id):
            self.events.publish(TaskEnded(task_id, agent_id, error, status, None, relayed=True))
            return
        reading = asyncio.ensure_future(self._read_and_publish(task_id, status))
        self._reading.add(reading)
        reading.add_done_callback(self._reading.discard)

    async def _read_and_publish(self, task_id: str, status: str) -> None:
        try:
            row = await self.db.read(lambda c: task_store.get_task(c, task_id))
        except Exception as exc:  # the engine's poll reads it later
            log.warning("nodes: reading task %s after its end on another node failed: %s", task_id, exc)
            return
        if row is not None:
            ended = TaskEnded(task_id, row["agent_id"], row["error"], status, row["result"], relayed=True)
            self.events.publish(ended)
