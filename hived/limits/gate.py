"""The limits gate: the dispatcher's one question about flow control, "which ready tasks that name
limits may start now?", and the books behind the answer (the buckets, the units each key holds,
the waiting lines, the limits closed by a throttled report).

A task that names limits waits here, not in the dispatcher's ready queue, so it never takes an
agent slot while it waits. A dispatch round `promote`s at most as many as there are free agent
slots (only those an agent could take), reserving their units; the ones assigned are `take`n (the
units move from reserved to held, and the buckets' new levels go in the assignment's commit); the
rest go back to their lines at `end_round`. An attempt's end `release`s what its task held.

Memory is a cache of the database: buckets are loaded from it and written with every assignment that
takes tokens (a compare-and-set on their version); what running tasks hold is derived from the
attempts in flight when hived starts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hived.limits.rules import Bucket, RoundRobin, has_room
from hived.model.limits import LimitSpec, parse_throttle, waiting_reason

MIN_WAKE = 0.001  # a wake-up sooner than this is taken as this (float dust never spins the loop)


class Gated(Protocol):
    """What the gate needs of a task (the dispatcher's ReadyTask)."""

    id: str
    priority: int
    seq: int
    requires: frozenset[str]

    @property
    def limits(self) -> list[dict[str, Any]]: ...


@dataclass
class LimitState:
    spec: LimitSpec
    bucket: Bucket | None
    created_at: datetime
    updated_at: datetime
    closed_until: float = 0.0  # epoch seconds
    held: dict[str | None, int] = field(default_factory=dict)
    reserved: dict[str | None, int] = field(default_factory=dict)
    reserved_tokens: float = 0.0
    lines: RoundRobin = field(default_factory=RoundRobin)

    def fits(self, key: str | None, units: int, now: float) -> bool:
        if now < self.closed_until:
            return False
        held = self.held.get(key, 0) + self.reserved.get(key, 0)
        if not has_room(held, units, self.spec.concurrency):
            return False
        return self.bucket is None or self.bucket.has(self.reserved_tokens + units, now)

    def wake_in(self, now: float) -> float | None:
        """Seconds until time alone may let a waiting task of this limit start (None: only a
        release or a new agent slot can)."""
        if not len(self.lines):
            return None
        if now < self.closed_until:
            return self.closed_until - now
        if self.bucket is None:
            return None
        wait = self.bucket.seconds_until(self.reserved_tokens + 1, now)
        return max(wait, MIN_WAKE) if 0 < wait < float("inf") else None


def _refs(task: Gated) -> list[tuple[str, str | None, int]]:
    return [(ref["name"], ref.get("key"), int(ref.get("units", 1))) for ref in task.limits]


class LimitGate:
    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now  # epoch seconds (the clock's wall time)
        self.limits: dict[str, LimitState] = {}
        self.waiting: dict[str, Gated] = {}
        self.promoted: dict[str, Gated] = {}
        self.holding: dict[str, list[tuple[str, str | None, int]]] = {}
        self.dirty: set[str] = set()  # buckets taken from in this round, to be written with it
        self.changed = asyncio.Event()  # the earliest wake-up may be sooner: the timer looks again

    # --- definitions ------------------------------------------------------------------------------

    def define(self, state: LimitState) -> None:
        old = self.limits.get(state.spec.name)
        if old is not None:  # re-applied: what is held and waiting stays
            state.held, state.lines, state.closed_until = old.held, old.lines, old.closed_until
        self.limits[state.spec.name] = state
        self.changed.set()

    # --- waiting ----------------------------------------------------------------------------------

    def park(self, task: Gated) -> None:
        """A ready task that names limits waits in the line of each (its key's)."""
        self.waiting[task.id] = task
        for name, key, _units in _refs(task):
            if state := self.limits.get(name):
                state.lines.push(task.id, key, task.priority, task.seq)
        self.changed.set()

    def discard(self, task_id: str) -> bool:
        """A waiting (or promoted) task leaves: cancelled, or back to its lines."""
        if (task := self.waiting.pop(task_id, None)) is not None:
            for name, _key, _units in _refs(task):
                if state := self.limits.get(name):
                    state.lines.discard(task_id)
            return True
        if (task := self.promoted.pop(task_id, None)) is not None:
            for name, key, units in _refs(task):
                if state := self.limits.get(name):
                    self._unreserve(state, key, units)
            return True
        return False

    def waiting_count(self) -> int:
        return len(self.waiting)

    def reason(self, task_id: str) -> str | None:
        """`limit NAME[KEY]` for a waiting task: the first of its limits without room now."""
        task = self.waiting.get(task_id)
        if task is None:
            return None
        now = self.now()
        for name, key, units in _refs(task):
            state = self.limits.get(name)
            if state is None or not state.fits(key, units, now):
                return waiting_reason(name, key)
        return None  # room now: it starts at the next dispatch round with a free agent

    # --- a dispatch round -------------------------------------------------------------------------

    def promote(self, free: int, can_run: Callable[[frozenset[str]], bool]) -> list[Gated]:
        """At most `free` waiting tasks that may start now and that an agent with a free slot could
        take, their units reserved; round-robin across the keys of each limit."""
        if not self.waiting or free <= 0:
            return []
        now, out = self.now(), []
        for state in self.limits.values():
            keys = state.lines.keys_in_turn() if len(out) < free else []
            while keys and len(out) < free:  # a pass serves each key once; blocked keys drop out
                served = []
                for key in keys:
                    if len(out) >= free:
                        break
                    task_id = state.lines.head(key)
                    task = self.waiting.get(task_id) if task_id else None
                    if task is None or not can_run(task.requires) or not self._fits(task, now):
                        continue
                    self._reserve(task)
                    out.append(task)
                    served.append(key)
                keys = served
        return out

    def _fits(self, task: Gated, now: float) -> bool:
        for name, key, units in _refs(task):
            state = self.limits.get(name)
            if state is None or not state.fits(key, units, now):
                return False
        return True

    def _reserve(self, task: Gated) -> None:
        del self.waiting[task.id]
        self.promoted[task.id] = task
        for name, key, units in _refs(task):
            state = self.limits[name]
            state.lines.discard(task.id)
            state.reserved[key] = state.reserved.get(key, 0) + units
            if state.bucket is not None:
                state.reserved_tokens += units

    @staticmethod
    def _unreserve(state: LimitState, key: str | None, units: int) -> None:
        state.reserved[key] = state.reserved.get(key, 0) - units
        if state.reserved[key] <= 0:
            del state.reserved[key]
        if state.bucket is not None:
            state.reserved_tokens = max(0.0, state.reserved_tokens - units)

    def take(self, task: Gated) -> None:
        """A promoted task is assigned: its reserved units are held, its tokens taken."""
        if self.promoted.pop(task.id, None) is None:
            return
        now = self.now()
        refs = _refs(task)
        for name, key, units in refs:
            state = self.limits[name]
            self._unreserve(state, key, units)
            state.held[key] = state.held.get(key, 0) + units
            state.lines.served(key)
            if state.bucket is not None:
                state.bucket.take(units, now)
                self.dirty.add(name)
                self.changed.set()  # the next refill is due later: the timer looks again
        self.holding[task.id] = refs

    def end_round(self) -> list[Gated]:
        """The promoted tasks no agent took go back to their lines; returns them."""
        left = list(self.promoted.values())
        for task in left:
            self.discard(task.id)
            self.park(task)
        return left

    def bucket_writes(self) -> list[dict[str, Any]]:
        """The buckets taken from since the last call, each with its new version (written with the
        assignments of this round; `version` - 1 is what the database must still hold)."""
        rows = []
        for name in sorted(self.dirty):
            bucket = self.limits[name].bucket
            if bucket is not None:
                bucket.version += 1
                row = {"name": name, "tokens": bucket.tokens, "at": bucket.at, "version": bucket.version}
                rows.append(row)
        self.dirty.clear()
        return rows

    def not_written(self, rows: Iterable[dict[str, Any]]) -> None:
        """The commit of `bucket_writes` failed: the versions in memory go back."""
        for row in rows:
            state = self.limits.get(row["name"])
            if state is not None and state.bucket is not None and state.bucket.version == row["version"]:
                state.bucket.version -= 1

    # --- holders ----------------------------------------------------------------------------------

    def hold(self, task: Gated) -> None:
        """A task in flight when hived started (an adopted agent still runs it) holds its units."""
        refs = _refs(task)
        for name, key, units in refs:
            if state := self.limits.get(name):
                state.held[key] = state.held.get(key, 0) + units
        self.holding[task.id] = refs

    def release(self, task_id: str, give_back: bool = False) -> None:
        """The attempt ended (or its assignment was not committed: `give_back` returns the tokens)."""
        refs = self.holding.pop(task_id, None)
        if refs is None:
            return
        now = self.now()
        for name, key, units in refs:
            state = self.limits.get(name)
            if state is None:
                continue
            state.held[key] = state.held.get(key, 0) - units
            if state.held[key] <= 0:
                del state.held[key]
            if give_back and state.bucket is not None:
                state.bucket.give_back(units, now)

    def close(self, name: str, until: float) -> bool:
        """A throttled report: no task of the limit starts before `until` (epoch seconds)."""
        state = self.limits.get(name)
        if state is None:
            return False
        state.closed_until = max(state.closed_until, until)
        self.changed.set()
        return True

    def throttle(self, result: object) -> tuple[tuple[str, float] | None, str | None]:
        """A throttled report's result -> ((limit, closed until), None), or (None, why it is not one
        this gate can act on: the attempt then fails as an error)."""
        try:
            name, seconds = parse_throttle(result)
        except ValueError as exc:
            return None, f"throttled, but {exc}"
        if name not in self.limits:
            return None, f"throttled by limit {name!r}, which is not defined (hivectl limit list)"
        return (name, self.now() + seconds), None

    def next_wake(self) -> float | None:
        """Seconds until a waiting task may become able to start by time alone, or None."""
        now = self.now()
        waits = [w for state in self.limits.values() if (w := state.wake_in(now)) is not None]
        return min(waits, default=None)
