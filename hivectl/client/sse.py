"""Server-sent events as hived's `/events` writes them, read line by line (pure: no I/O)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One event of hived: its id (grows while a daemon runs; a restarted hived counts anew), its kind
    (`agent.status`, `task.completed`, ...) and `data`, the JSON object as sent (id, kind, time
    and the event's own fields)."""

    id: int
    kind: str
    data: dict[str, Any]


@dataclass
class SseDecoder:
    """Feed it the lines of the stream; it hands back an `Event` at each blank line that ends one.
    Comments (`: keep-alive`) and unknown fields are skipped, as the SSE specification says."""

    _id: str = ""
    _kind: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        elif name == "event":
            self._kind = value
        return None

    def _dispatch(self) -> Event | None:
        data, event_id, kind = self._data, self._id, self._kind
        self._data, self._kind = [], ""
        if not data:
            return None
        payload = json.loads("\n".join(data))
        if not isinstance(payload, dict):
            payload = {"value": payload}
        number = int(event_id) if event_id.isdigit() else int(payload.get("id", 0))
        return Event(id=number, kind=kind or str(payload.get("kind", "")), data=payload)
