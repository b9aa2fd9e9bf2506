"""Live events of the daemon (agent status changes, task ends, ...): a bounded in-memory log with
growing ids that `/events` streams as server-sent events, resumable with Last-Event-ID while the
daemon runs. Publishing is cheap: append and wake the subscribers."""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    time: datetime
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            **self.data,
        }


class EventBus:
    def __init__(self, capacity: int = 10_000) -> None:
        self._log: collections.deque[Event] = collections.deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._pending_notify = False

    @property
    def last_id(self) -> int:
        return self._log[-1].id if self._log else 0

    def publish(self, kind: str, **data: Any) -> Event:
        event = Event(next(self._ids), kind, datetime.now(UTC), data)
        self._log.append(event)
        if not self._pending_notify:  # one wake-up per loop turn, however many events
            self._pending_notify = True
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._notify()))
        return event

    async def _notify(self) -> None:
        self._pending_notify = False
        async with self._changed:
            self._changed.notify_all()

    def since(self, last_id: int) -> list[Event]:
        if not self._log or last_id >= self._log[-1].id:
            return []
        first = self._log[0].id
        start = max(0, last_id - first + 1)
        return list(itertools.islice(self._log, start, None))

    async def follow(self, last_id: int, idle: float = 15.0) -> AsyncIterator[Event | None]:
        """Events after `last_id`, then new ones as they come; None every `idle` s of silence."""
        while True:
            batch = self.since(last_id)
            for event in batch:
                yield event
                last_id = event.id
            if batch:
                continue
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=idle)
                except TimeoutError:
                    yield None
