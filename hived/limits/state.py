"""The gate's books of one limit (LimitState: its bucket, the units each key holds and reserves, its
waiting line) and of one task (Ticket: its limits looked up once), with the small rules over them the
gate applies at every dispatch round."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hived.limits.rules import Bucket, Members, RoundRobin
from hived.model.limits import LimitSpec

MIN_WAKE = 0.001  # a wake-up sooner than this is taken as this (float dust never spins the loop)


class Gated(Protocol):
    """What the gate needs of a task (the dispatcher's ReadyTask)."""

    id: str
    priority: int
    seq: int
    requires: frozenset[str]

    @property
    def limits(self) -> list[dict[str, Any]]: ...


@dataclass(eq=False)
class LimitState:
    spec: LimitSpec
    bucket: Bucket | None
    created_at: datetime
    updated_at: datetime
    closed_until: float = 0.0  # epoch seconds
    held: dict[str | None, int] = field(default_factory=dict)
    reserved: dict[str | None, int] = field(default_factory=dict)
    reserved_tokens: float = 0.0
    lines: RoundRobin = field(default_factory=RoundRobin)  # the tasks whose home it is
    waiting: int = 0  # tasks waiting that name it (in its lines or another limit's)
    members: Members | None = None  # with a strategy: the tasks per key, waiting or holding
    elsewhere: dict[str | None, int] = field(default_factory=dict)  # of `held`: other nodes' units
    most: float = field(init=False)  # the most units a task may take of it (what it ever gives)
    concurrency: int | None = field(init=False)  # spec.concurrency, read at every check

    def __post_init__(self) -> None:
        spec = self.spec
        self.most = min(v for v in (spec.concurrency, spec.bucket_size, float("inf")) if v is not None)
        self.concurrency = spec.concurrency

    def fits(self, key: str | None, units: int, now: float) -> bool:
        if now < self.closed_until:
            return False
        most = self.concurrency
        if most is not None and self.held.get(key, 0) + self.reserved.get(key, 0) + units > most:
            return False
        bucket = self.bucket  # (Bucket.has, inline: the level is never below `tokens`)
        if bucket is None or bucket.tokens + 1e-9 >= self.reserved_tokens + units:
            return True
        return bucket.has(self.reserved_tokens + units, now)

    def wake_in(self, now: float) -> float | None:
        """Seconds until time alone may let a waiting task of this limit start (None: only a
        release or a new agent slot can)."""
        if not self.waiting:
            return None
        if now < self.closed_until:
            return self.closed_until - now
        if self.bucket is None:
            return None
        wait = self.bucket.seconds_until(self.reserved_tokens + 1, now)
        return max(wait, MIN_WAKE) if 0 < wait < float("inf") else None


Ref = tuple[LimitState, str | None, int]  # a limit a task takes: its state, the key, the units


@dataclass(eq=False, slots=True)
class Ticket:
    """A task in the gate with its limits looked up: from its park to its attempt's end. It keeps
    what the gate needs of the task, not the task: one object per waiting task for the garbage
    collector to track (`refs` are shared by the tasks that take the same keys)."""

    id: str
    priority: int
    seq: int
    requires: frozenset[str]
    refs: tuple[Ref, ...]
    home: LimitState  # the limit whose line it waits in
    # Its line there: the key, with the capabilities it requires if any (a line is served by its head,
    # so one no agent here can run never holds up the key's tasks that others could).
    home_key: str | None | tuple[str | None, frozenset[str]]


def fits(ticket: Ticket, now: float) -> bool:
    for state, key, units in ticket.refs:
        if not state.fits(key, units, now):
            return False
    return True


def held_elsewhere(state: LimitState, key: str | None, units: int) -> bool:
    """Other nodes' tasks hold `units` of the key now (hived.nodes.limits): counted in `held`
    beside this node's. Returns whether that fell (room may have opened)."""
    old = state.elsewhere.get(key, 0)
    if units == old:
        return False
    left = state.held.get(key, 0) + units - old
    if left > 0:
        state.held[key] = left
    else:
        state.held.pop(key, None)
    if units > 0:
        state.elsewhere[key] = units
    else:
        state.elsewhere.pop(key, None)
    return units < old


def unreserve(state: LimitState, key: str | None, units: int) -> None:
    left = state.reserved.get(key, 0) - units
    if left > 0:
        state.reserved[key] = left
    else:
        state.reserved.pop(key, None)
    if state.bucket is not None:
        state.reserved_tokens = max(0.0, state.reserved_tokens - units)


def names(ticket: Ticket, state: LimitState) -> bool:
    return any(ref_state is state for ref_state, _key, _units in ticket.refs)
