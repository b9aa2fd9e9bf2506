"""Live events of the daemon, one typed stream: each kind is a small frozen dataclass (what it
carries is typed; `kind` and `data()` are its form on the wire). The bus keeps a bounded in-memory
log with growing ids that `/events` streams as server-sent events, resumable with Last-Event-ID
while the daemon runs, and calls the in-process subscribers of each type (the agent manager's
counters, the workflow engine) as the event is published. Publishing is cheap: append, call the
subscribers, wake the streams."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cache, cached_property
from typing import Any, ClassVar, TypeVar

from hived.clock import SYSTEM_CLOCK, Clock

INTERNAL = {"wire": False}  # field metadata: carried in process, never streamed


@dataclass(frozen=True)
class Published:
    """A typed event. Its wire form: `kind`, then its fields (but INTERNAL ones) in order. An event
    that is not `streamed` only reaches the in-process subscribers (metrics): never the log or SSE."""

    streamed: ClassVar[bool] = True

    @property
    def kind(self) -> str:
        raise NotImplementedError

    def data(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _wire_fields(type(self))}


@cache
def _wire_fields(kind: type[Published]) -> tuple[str, ...]:
    """The names of a kind's streamed fields, in order (found once per kind, not per event)."""
    return tuple(f.name for f in fields(kind) if f.metadata.get("wire", True))


@dataclass(frozen=True)
class AgentStatusChanged(Published):
    agent: str
    agent_id: str
    status: str
    previous: str
    reason: str | None

    @property
    def kind(self) -> str:
        return "agent.status"


@dataclass(frozen=True)
class TaskSubmitted(Published):
    task_id: str
    type: str
    priority: int

    @property
    def kind(self) -> str:
        return "task.submitted"


@dataclass(frozen=True)
class TaskRetrying(Published):
    task_id: str
    agent_id: str
    error: str | None
    reason: str | None
    attempt: int
    retry_in: float

    @property
    def kind(self) -> str:
        return "task.retrying"


@dataclass(frozen=True)
class TaskEnded(Published):
    """A task reached a final state (completed, failed, cancelled): `task.<status>` on the wire."""

    task_id: str
    agent_id: str | None
    error: str | None
    status: str = field(default="", metadata=INTERNAL)
    result: dict[str, Any] | None = field(default=None, metadata=INTERNAL)
    relayed: bool = field(default=False, metadata=INTERNAL)  # it ended on another node (hived.nodes)

    @property
    def kind(self) -> str:
        return f"task.{self.status}"

    def row(self) -> dict[str, Any]:
        """The fields of the task's row that those who follow task ends read."""
        return {"agent_id": self.agent_id, "error": self.error, "result": self.result}


@dataclass(frozen=True)
class StepChanged(Published):
    run_id: str
    step_id: str
    status: str
    task_id: str | None
    agent_id: str | None

    @property
    def kind(self) -> str:
        return f"step.{self.status}"


@dataclass(frozen=True)
class ScheduleFired(Published):
    """A schedule's start time came (or it was triggered): `schedule.started|skipped|queued|failed`."""

    schedule: str
    action: str
    id: str | None  # the run (or task) started, or the one still going
    error: str | None = None

    @property
    def kind(self) -> str:
        return f"schedule.{self.action}"


@dataclass(frozen=True)
class RunChanged(Published):
    run_id: str
    workflow: str
    status: str

    @property
    def kind(self) -> str:
        return f"run.{self.status}"


@dataclass(frozen=True)
class AttemptEnded(Published):
    """An attempt ended (in process only: `task.<status>` and `task.retrying` are its wire form)."""

    streamed: ClassVar[bool] = False
    task_id: str
    outcome: str
    reason: str
    ran_seconds: float | None  # from delivery to the end; None if never delivered

    @property
    def kind(self) -> str:
        return "attempt.ended"


@dataclass(frozen=True)
class TaskAssigned(Published):
    """A task's attempt was given to an agent (in process only)."""

    streamed: ClassVar[bool] = False
    task_id: str
    attempt: int
    waited_seconds: float | None  # from submit to this first assignment; None for later attempts

    @property
    def kind(self) -> str:
        return "task.assigned"


@dataclass(frozen=True)
class AgentRestarted(Published):
    """The supervisor started an agent again after it ended (in process only)."""

    streamed: ClassVar[bool] = False
    agent_id: str

    @property
    def kind(self) -> str:
        return "agent.restarted"


P = TypeVar("P", bound=Published)


@dataclass(frozen=True)
class Event:
    """One entry of the log: its id and time, its wire form, and the typed event (None for an
    event published by kind and fields)."""

    id: int
    kind: str
    time: datetime
    data: dict[str, Any]
    typed: Published | None = field(default=None, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            **self.data,
        }

    @cached_property
    def frame(self) -> bytes:
        """Its server-sent-event frame, encoded once however many streams send it."""
        data = json.dumps(self.as_json(), default=str)
        return f"id: {self.id}\nevent: {self.kind}\ndata: {data}\n\n".encode()


BLOCK = 1000  # events per shared block of the backlog (about 200 KB of frames)


class EventBus:
    def __init__(self, capacity: int = 10_000, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._subscribers: dict[type[Published], list[Callable[[Any], None]]] = {}
        self._log: collections.deque[Event] = collections.deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._wake = asyncio.Event()  # set (and replaced) at each publish wave: wakes every stream at once
        self._pending_notify = False
        self._blocks: dict[int, bytes] = {}  # block number: its frames joined (see `block_after`)
        self._chunks: dict[tuple[int, int], bytes] = {}  # (first, last id): frames joined (`chunk_after`)

    @property
    def last_id(self) -> int:
        return self._log[-1].id if self._log else 0

    def subscribe(self, kind: type[P], handler: Callable[[P], None]) -> None:
        """Call `handler` with every event of this type, as it is published, in subscription order."""
        self._subscribers.setdefault(kind, []).append(handler)

    def unsubscribe(self, kind: type[P], handler: Callable[[P], None]) -> None:
        self._subscribers.get(kind, []).remove(handler)

    async def wait_until(self, kind: type[P], done: Callable[[P | None], bool], timeout: float) -> bool:
        """Wait (up to `timeout` s on the bus's clock) until `done` holds: it is asked once now with
        None, then with every event of `kind`. True when it held."""
        if done(None):
            return True
        reached = asyncio.Event()

        def check(event: P) -> None:
            if done(event):
                reached.set()

        self.subscribe(kind, check)
        try:
            return await self.clock.wait(reached, timeout)
        finally:
            self.unsubscribe(kind, check)

    def publish(self, event: Published | str, **data: Any) -> Event:
        """Log the event, call its subscribers, wake the streams. A plain `kind` with fields is
        accepted too (streamed as is, no subscriber)."""
        typed = event if isinstance(event, Published) else None
        if typed is None:
            entry = Event(next(self._ids), str(event), self.clock.now(), data)
        elif not typed.streamed:  # for subscribers only: never logged or streamed
            entry = Event(0, typed.kind, self.clock.now(), {}, typed)
        else:
            entry = Event(next(self._ids), typed.kind, self.clock.now(), typed.data(), typed)
        if entry.id:
            self._log.append(entry)
            if not self._pending_notify:  # one wake-up per loop turn, however many events
                self._pending_notify = True
                asyncio.get_running_loop().call_soon(self._notify)
        if typed is not None:
            for handler in self._subscribers.get(type(typed), ()):
                handler(typed)
        return entry

    def _notify(self) -> None:
        self._pending_notify = False
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    async def more_after(self, last_id: int, idle: float) -> bool:
        """Wait until events after `last_id` are kept (True), or `idle` s of silence (False)."""
        if self.behind(last_id):
            return True
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=idle)
        except TimeoutError:
            return False
        return True

    def chunk_after(self, last_id: int, most: int) -> tuple[bytes, int, int] | None:
        """The frames of the (at most `most`) events after `last_id`, joined once for every stream at
        the same place (streams that keep up all are): (bytes, first id, last id); None if none."""
        batch = self.since(last_id, most)
        if not batch:
            return None
        key = (batch[0].id, batch[-1].id)
        joined = self._chunks.get(key)
        if joined is None:
            if len(self._chunks) >= 64:
                self._chunks.clear()
            joined = self._chunks[key] = b"".join(e.frame for e in batch)
        return joined, key[0], key[1]

    def since(self, last_id: int, most: int | None = None) -> list[Event]:
        """The events after `last_id` still kept, oldest first (at most `most` of them: a stream
        replaying the backlog takes it a chunk per turn of the event loop, not 10,000 at once)."""
        if not self._log or last_id >= self._log[-1].id:
            return []
        count = min(len(self._log), self._log[-1].id - last_id)
        if most is None or most >= count:
            return list(itertools.islice(reversed(self._log), count))[::-1]
        start = len(self._log) - count  # the ids in the log are consecutive
        return list(itertools.islice(self._log, start, start + most))

    def block_after(self, last_id: int) -> tuple[bytes, int] | None:
        """For streams replaying the backlog: the frames of the events after `last_id` to the end of
        its block (ids `k*BLOCK+1 .. (k+1)*BLOCK`) and the block's last id, when that block is complete
        and wholly kept; else None. A whole block is joined once and shared by every stream that
        replays it: 500 streams opened at once replay the same 10,000 events as 10 shared writes
        each, not 100 chunks that each of them looks up and joins."""
        block, offset = divmod(last_id, BLOCK)
        end = (block + 1) * BLOCK
        if end > self.last_id or not self._log or block * BLOCK + 1 < self._log[0].id:
            return None
        if offset:  # a stream that starts inside a block: the rest of it, its own
            return b"".join(e.frame for e in self.since(last_id, end - last_id)), end
        joined = self._blocks.get(block)
        if joined is None:
            first = self._log[0].id
            for gone in [b for b in self._blocks if b * BLOCK + 1 < first]:
                del self._blocks[gone]
            joined = self._blocks[block] = b"".join(e.frame for e in self.since(last_id, BLOCK))
        return joined, end

    def behind(self, last_id: int) -> int:
        """How many events were published after `last_id`."""
        return max(0, self.last_id - last_id)

    async def batches(
        self, last_id: int, idle: float = 15.0, most: int | None = None
    ) -> AsyncIterator[list[Event]]:
        """The events after `last_id`, then new ones as they come, a list at a time (those published
        since the last one, at most `most`); an empty list after `idle` s of silence."""
        while True:
            batch = self.since(last_id, most)
            if batch:
                last_id = batch[-1].id
                yield batch
                continue
            if not await self.more_after(last_id, idle):
                yield []

    async def follow(self, last_id: int, idle: float = 15.0) -> AsyncIterator[Event | None]:
        """Events after `last_id`, then new ones as they come; None every `idle` s of silence."""
        async for batch in self.batches(last_id, idle):
            if not batch:
                yield None
            for event in batch:
                yield event
