"""Events across the nodes: what is published on one node's bus reaches the others (NOTIFY, a batch
per notification), so that `/events` on any node carries the whole cluster's events, `--wait` on one
node sees a task end on another, and a workflow run hears of its steps' tasks wherever they ran.

A relayed event is published on the receiving bus by its kind and fields, with `node` (the sender)
added: streamed, but no in-process subscriber sees it, except task ends, which are published typed
(with the task's row, read from the database, when a workflow run follows the task) and marked
`relayed` so that they are not sent on again. A notification can be lost while a node's connection
is down; when it is back, the events it could not send are sent, and it asks the other nodes for
what they sent meanwhile (from their buses' logs: the newest 10,000 events), which each receiver
takes once (events carry their bus id and the sender's start token). The workflow engine's slow poll
covers its steps besides (hived.nodes.cluster)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import uuid
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
        text = json.dumps([event.id, event.kind, {k: _short(v) for k, v in event.data.items()}], default=str)
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


class Taken:
    """The bus ids of one sender's events taken here (for one start of that sender): the newest KEEP
    of them, and every id at or below the oldest forgotten one. A replay may arrive after newer
    events, so this is a set, not a high-water mark."""

    KEEP = 20_000

    def __init__(self, boot: str) -> None:
        self.boot = boot
        self.ids: set[int] = set()
        self.order: collections.deque[int] = collections.deque()
        self.floor = 0
        self.last = 0  # the highest id taken

    def take(self, event_id: int) -> bool:
        """Whether the event is new here (then it is taken)."""
        if event_id <= self.floor or event_id in self.ids:
            return False
        self.ids.add(event_id)
        self.order.append(event_id)
        self.last = max(self.last, event_id)
        if len(self.order) > self.KEEP:
            forgotten = self.order.popleft()
            self.ids.discard(forgotten)
            self.floor = max(self.floor, forgotten)
        return True


def own(events: list[Event]) -> list[Event]:
    """The events this node publishes itself (not those relayed to it, nor plain text events)."""
    return [e for e in events if e.typed is not None and not getattr(e.typed, "relayed", False)]


class Relay:
    def __init__(self, db: Database, wire: Wire, events: EventBus, follows: Callable[[str], bool]) -> None:
        self.db = db
        self.wire = wire
        self.events = events
        self.follows = follows  # whether a workflow run here waits for this task
        self.boot = uuid.uuid4().hex[:12]  # this process: bus ids start again at 1 after a restart
        self.seen: dict[str, Taken] = {}  # sender -> the bus ids taken from it
        self.unsent_after: int | None = None  # events after this id could not be sent (wire down)
        # Alone (no other node up at the last heartbeat: set by the cluster from its membership), a
        # node sends nothing; when one joins, it is sent what came after the last heartbeat that
        # found none (`alone_mark`: the bus's last id before it), since it may have been up already.
        self.peers: Callable[[], int | None] = lambda: None  # None: not known (sends)
        self.alone_mark: Callable[[], int] = lambda: 0
        self._skipped = False
        self._beat = asyncio.Event()  # a heartbeat since the relay last looked at `peers`
        self._task: asyncio.Task[None] | None = None
        self._reading: set[asyncio.Task[None]] = set()
        wire.on("events", self._received)
        wire.on("replay", self._replay_asked)
        wire.on_reconnect.append(self._reconnected)

    def start(self) -> None:
        self._task = asyncio.create_task(self._send_loop(self.events.last_id), name="nodes-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _send_loop(self, after: int) -> None:
        while True:
            # Nobody to tell: look again at the next heartbeat, not at each event (a NOTIFY per batch
            # was ~7 % of a lone hived's CPU, and a wake per event a few % more).
            if self.peers() == 0:
                self._skipped, after = True, self.events.last_id
                self._beat.clear()
                await self._beat.wait()
                continue
            if self._skipped:  # someone is up: what came after the last heartbeat that found nobody
                self._skipped, mark, after = False, self.alone_mark(), self.events.last_id
                await self._send(own(self.events.since(mark)), mark)
                continue
            batch = self.events.since(after, 500)
            if not batch:
                await self.events.more_after(after, 60.0)
                continue
            after = batch[-1].id
            await self._send(own(batch), batch[0].id - 1)

    async def beat(self) -> None:
        """After each heartbeat of this node (the cluster's beat handler): `peers` may have changed."""
        self._beat.set()

    async def _send(self, events: list[Event], before: int) -> None:
        """Send these events; if the wire is down, remember from where to send again."""
        for chunk in packed(events):
            if not await self.wire.send("events", {"e": chunk, "b": self.boot}) and self.unsent_after is None:
                self.unsent_after = before

    def _reconnected(self) -> None:
        """The wire is back: send what could not be sent, and ask for what the others sent."""
        unsent, self.unsent_after = self.unsent_after, None
        since = {sender: {"b": taken.boot, "id": taken.last} for sender, taken in self.seen.items()}
        self._spawn(self._catch_up(unsent, since))

    async def _catch_up(self, unsent: int | None, since: dict[str, Any]) -> None:
        if unsent is not None:
            await self._send(own(self.events.since(unsent)), unsent)
        if since:
            await self.wire.send("replay", {"since": since})

    def _replay_asked(self, _sender: str, body: dict[str, Any]) -> None:
        mine = (body.get("since") or {}).get(self.wire.node)
        if isinstance(mine, dict) and mine.get("b") == self.boot and isinstance(mine.get("id"), int):
            self._spawn(self._send(own(self.events.since(mine["id"])), mine["id"]))

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    def _received(self, sender: str, body: dict[str, Any]) -> None:
        try:
            events = json.loads(body["e"])
        except (KeyError, TypeError, ValueError):
            return
        taken = self.seen.get(sender)
        if taken is None or body.get("b") != taken.boot:  # a node not heard of before, or started again
            taken = self.seen[sender] = Taken(str(body.get("b")))
        for item in events:
            if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], int)):
                continue  # not this version's form
            event_id, kind, data = item
            if not taken.take(event_id):
                continue  # taken already (a replay overlaps what arrived)
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
        self._spawn(self._read_and_publish(task_id, status))

    async def _read_and_publish(self, task_id: str, status: str) -> None:
        try:
            row = await self.db.read(lambda c: task_store.get_task(c, task_id))
        except Exception as exc:  # the engine's poll reads it later
            log.warning("nodes: reading task %s after its end on another node failed: %s", task_id, exc)
            return
        if row is not None:
            ended = TaskEnded(task_id, row["agent_id"], row["error"], status, row["result"], relayed=True)
            self.events.publish(ended)
