"""Nodes: several hived on one PostgreSQL (hived.nodes). The pure part: what a node looks like on the
wire, how nodes number their tasks and leases so that two never hand out the same one, and when a
silent node counts as lost."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

SLOTS = 64  # nodes in one cluster at most: a node's numbers are n * SLOTS + its slot


class Node(BaseModel):
    """A node as `hivectl node list|show` and `GET /nodes` give it."""

    name: str
    status: str
    slot: int
    host: str | None = None
    pid: int | None = None
    address: str | None = None
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    lost_at: datetime | None = None
    agents: list[str] = []
    this: bool = False  # the node that answered
    taken: int | None = None  # (the node that answered) tasks it took from the shared queue
    lost_claims: int | None = None  # (the node that answered) assignments another node won first


class NodeList(BaseModel):
    items: list[Node]
    total: int


class Numbers:
    """A node's task sequence numbers and lease (fencing) numbers: `n * SLOTS + slot`, so the
    numbers of two nodes never meet. Sequence numbers follow the clock (milliseconds), so that
    tasks submitted to different nodes keep roughly the order they were submitted in."""

    def __init__(self, slot: int, seq_floor: int, lease_floor: int) -> None:
        if not 0 <= slot < SLOTS:
            raise ValueError(f"slot {slot} is not in 0..{SLOTS - 1}")
        self.slot = slot
        self._seq = seq_floor // SLOTS
        self._lease = lease_floor // SLOTS

    def seq(self, now_ms: int) -> int:
        self._seq = max(self._seq + 1, now_ms)
        return self._seq * SLOTS + self.slot

    def lease(self) -> int:
        self._lease += 1
        return self._lease * SLOTS + self.slot


def free_slot(taken: set[int]) -> int | None:
    """The lowest slot no node holds, None when the cluster is full."""
    return next((s for s in range(SLOTS) if s not in taken), None)


def is_silent(heartbeat_at: datetime | None, now: datetime, timeout: float) -> bool:
    """Whether a node's last heartbeat is older than `timeout` seconds (both times from the
    database's clock, so the nodes' own clocks do not matter)."""
    return heartbeat_at is None or now - heartbeat_at > timedelta(seconds=timeout)
