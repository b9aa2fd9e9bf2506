"""The daemon's own answers: `/healthz` and `/status` (re-exported by hived.model.schemas)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from hived.model.queue import QueuePause


class Health(BaseModel):
    status: str
    version: str


class Status(BaseModel):
    version: str
    database: str
    agents: dict[str, int]
    tasks: dict[str, int]
    queue_depth: int
    runs: dict[str, int] = Field(default_factory=dict)
    queue_by_priority: dict[str, int] = Field(default_factory=dict)  # ready or retrying, by priority
    last_event_id: int = 0  # follow /events from here to miss nothing after this snapshot
    paused: list[QueuePause] = Field(default_factory=list)  # `hivectl queue pause`
    cordoned: list[str] = Field(default_factory=list)  # names of cordoned agents
