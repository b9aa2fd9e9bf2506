"""Limits held cluster-wide (`kind: Limit` on several nodes of one PostgreSQL). The database keeps
the books: a claim of tasks that name limits locks those limits' rows, reads the units every node's
tasks hold of their keys and the buckets' levels, lets start only what fits (hived.limits.holds),
and writes the holds and the new levels in the same commit as the claim; an attempt's end deletes
its holds in its own commit, and a sweep deletes those of attempts ended otherwise (a cancel, a lost
node's attempts moved). Each node's gate keeps a copy (the other nodes' holders counted in `held`,
the buckets' levels) so that a round rarely asks for what the database refuses; a refused task waits
in the gate again. Nodes tell each other (NOTIFY) when holds are freed and when a limit is applied
or deleted; a slow poll behind it reloads both."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hived.limits.gate import Found
from hived.limits.holds import Books, Want, admit, summed
from hived.limits.rules import queued_units
from hived.limits.service import LimitsService
from hived.limits.state import held_elsewhere
from hived.model.limits import LimitSpec
from hived.nodes.loops import Loops
from hived.store import limit_holds as hold_store
from hived.store import limits as limit_store
from hived.store.db import Database
from hived.store.wire import Wire
from hived.tasks.dispatcher import Dispatcher

log = logging.getLogger("hived.nodes")

KIND = "limits"
POLL = 1.0  # s between reloads of the limits and sweeps of the holds, when nobody said anything
SETTLE = 0.01  # s: holds freed within it are announced in one notification


@dataclass
class Taken:
    """What a claim's transaction found and decided of the limits its tasks take."""

    asks: list[tuple[str, list[Want]]]
    admitted: set[str]
    refused: set[str]
    rows: dict[str, dict[str, Any]]  # the assignment rows, by task id
    start: dict[str, float | None]  # the buckets' levels before the claim
    epoch: float
    others: dict[tuple[str, str], int] = field(default_factory=dict)  # held by the other nodes
    closed: dict[str, float] = field(default_factory=dict)
    levels: dict[str, float] = field(default_factory=dict)  # the buckets' levels written


def _books(locked: list[dict[str, Any]], held: list[dict[str, Any]], epoch: float) -> Books:
    books = Books()
    for row in locked:
        spec = LimitSpec.model_validate(row["definition"])
        books.concurrency[spec.name] = spec.concurrency
        if (rate := spec.per_second) is not None and (size := spec.bucket_size) is not None:
            tokens = row["tokens"] if row["tokens"] is not None else size
            at = row["tokens_at"] if row["tokens_at"] is not None else epoch
            books.tokens[spec.name] = min(size, tokens + max(0.0, epoch - at) * rate)
        else:
            books.tokens[spec.name] = None
        if (row["closed_until"] or 0.0) > epoch:
            books.closed.add(spec.name)
    for row in held:
        key = (row["name"], row["key"])
        books.held[key] = books.held.get(key, 0) + int(row["units"])
    return books


class ClusterLimits:
    def __init__(self, db: Database, dispatcher: Dispatcher, service: LimitsService, wire: Wire) -> None:
        self.db, self.dispatcher, self.service, self.wire = db, dispatcher, service, wire
        self.gate = dispatcher.gate
        self.gate.in_database = True
        self.node = wire.node
        self.refused = 0  # assignments the database's books refused (GET /nodes shows none: a count)
        self._look = asyncio.Event()  # another node changed a limit, or freed holds this node waits for
        self._full_reload = True  # (else only the other nodes' holders are read again)
        self._swept = 0.0  # monotonic time of the last sweep
        self._freed = asyncio.Event()  # holds were freed here: tell the others
        self._loops = Loops()
        wire.on(KIND, self._heard)
        wire.on_reconnect.append(self._reload_soon)
        service.announce = self._announce
        service.members = self.members

    def start(self) -> None:
        self._loops.start(("nodes-limits", self._reload_loop()), ("nodes-limits-freed", self._freed_loop()))

    async def stop(self) -> None:
        await self._loops.stop()

    # --- in the claim's transaction -----------------------------------------------------------------

    def take(self, conn: Any, rows: list[dict[str, Any]], now: datetime) -> Taken | None:
        """The books of the limits these assignments take, locked; which of them fit."""
        flight, asks = self.dispatcher.in_flight, []
        for row in rows:
            entry = flight.get(row["task_id"])
            if entry is not None and entry.task.limits:
                wants = [(r["name"], r.get("key") or "", int(r.get("units", 1))) for r in entry.task.limits]
                asks.append((row["task_id"], wants))
        if not asks:
            return None
        names = sorted({name for _, wants in asks for name, _, _ in wants})
        locked = hold_store.lock_limits(conn, names)
        held = hold_store.held(conn, names, self.node)
        epoch = now.timestamp()
        books = _books(locked, held, epoch)
        taken = Taken(asks, set(), set(), {r["task_id"]: r for r in rows}, dict(books.tokens), epoch)
        taken.admitted = set(admit(books, asks))
        taken.refused = {task_id for task_id, _ in asks} - taken.admitted
        taken.others = {(r["name"], r["key"]): int(r["units"]) for r in held if not r["mine"]}
        taken.closed = {r["name"]: r["closed_until"] or 0.0 for r in locked}
        return taken

    def hold(self, conn: Any, won: set[str], taken: Taken) -> None:
        """The holds of the assignments won, and the buckets' new levels."""
        holds, used = [], dict.fromkeys(taken.start, 0)
        for task_id, wants in taken.asks:
            if task_id not in won or task_id not in taken.admitted:
                continue
            lease = taken.rows[task_id]["lease"]
            for (name, key), units in summed(wants).items():
                if name in used:
                    used[name] += units
                    holds.append(
                        {
                            "task_id": task_id,
                            "name": name,
                            "key": key,
                            "units": units,
                            "lease": lease,
                            "node": self.node,
                        }
                    )
        hold_store.hold(conn, holds)
        for name, units in used.items():
            level = taken.start[name]
            if level is not None:
                taken.levels[name] = max(0.0, level - units)
        changed = [{"name": n, "tokens": t, "at": taken.epoch} for n, t in taken.levels.items() if used[n]]
        hold_store.save_levels(conn, changed)

    def frees_holds(self, rows: Sequence[dict[str, Any]]) -> bool:
        """Whether `ended` would free holds for these ends (a task naming limits, or not in flight)."""
        flight = self.dispatcher.in_flight
        return any((entry := flight.get(row["task_id"])) is None or entry.task.limits for row in rows)

    def ended(self, conn: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Attempts end in this transaction: their holds go with them (an attempt not held here, a
        lost node's, may hold some too)."""
        flight, ended, full = self.dispatcher.in_flight, [], False
        for row in rows:
            entry = flight.get(row["task_id"])
            if entry is None or entry.task.limits:
                ended.append((row["task_id"], row["lease"]))
                full = full or entry is None or self._full(entry.task.limits)
        if ended:
            hold_store.free(conn, ended)
        if full:  # another node may wait for these keys: it is told (a key with room needs no news)
            self._freed.set()

    def _full(self, limits: list[dict[str, Any]]) -> bool:
        """Whether one of these keys is full, as this node last saw the cluster."""
        for ref in limits:
            state = self.gate.limits.get(ref["name"])
            if state is not None and (most := state.concurrency) is not None:
                if state.held.get(ref.get("key"), 0) >= most:
                    return True
        return False

    # --- after the claim's commit -------------------------------------------------------------------

    def settle(self, taken: Taken) -> None:
        """The gate's copy takes what the claim's transaction found (after the refused went back)."""
        self.refused += len(taken.refused)
        for name, until in taken.closed.items():
            state = self.gate.limits.get(name)
            if state is not None:
                state.closed_until = max(state.closed_until, until)
        for name, level in taken.levels.items():
            state = self.gate.limits.get(name)
            if state is not None and state.bucket is not None:
                state.bucket.tokens, state.bucket.at = min(level, state.bucket.size), taken.epoch
        self._elsewhere(taken.others, set(taken.closed))

    def _elsewhere(self, others: dict[tuple[str, str], int], names: set[str] | None = None) -> bool:
        """The other nodes' holders of these limits (all: None) into the gate; whether any fell."""
        fell = False
        for name, state in self.gate.limits.items():
            if names is not None and name not in names:
                continue
            keys = {key or "" for key in state.elsewhere} | {k for n, k in others if n == name}
            for key in keys:
                fell |= held_elsewhere(state, key or None, others.get((name, key), 0))
        if fell:
            self.gate.changed.set()
            self.dispatcher.wake()
        return fell

    # --- the strategies ------------------------------------------------------------------------------

    async def members(self, wants: list[tuple[str, str | None]], seq: int) -> Found:
        """The tasks of these keys the database knows, for the strategies at a submit: every node's
        holders, and the tasks queued older than `seq` (task id -> (seq, units))."""

        def read(conn: Any) -> list[tuple[list[Any], list[Any]]]:
            return [hold_store.of_key(conn, name, key, seq) for name, key in wants]

        found: dict[tuple[str, str | None], dict[str, tuple[int, int]]] = {}
        for (name, key), (holders, queued) in zip(wants, await self.db.read(read), strict=True):
            tasks = found.setdefault((name, key), {})
            for row in queued:
                limits = json.loads(row.limits) if isinstance(row.limits, str) else row.limits
                if units := queued_units(limits, name, key):
                    tasks[row.id] = (int(row.seq), units)
            for row in holders:
                tasks[row.task_id] = (int(row.seq), int(row.units))
        return found

    def look_again(self) -> None:
        """This node freed another node's holds (a cancel): its copy of them is read again."""
        self._look.set()

    # --- news between the nodes ---------------------------------------------------------------------

    async def _announce(self, name: str) -> None:
        """A limit was applied or deleted here: the other nodes reload it."""
        await self.wire.send(KIND, {"defined": name})

    async def _freed_loop(self) -> None:
        while True:
            await self._freed.wait()
            await asyncio.sleep(SETTLE)  # (the end's commit is over by then)
            self._freed.clear()
            await self.wire.send(KIND, {"freed": True})

    def _reload_soon(self) -> None:
        self._full_reload = True
        self._look.set()

    def _heard(self, _sender: str, body: dict[str, Any]) -> None:
        if "defined" in body:
            self._reload_soon()
        elif self._blocked():  # holds freed elsewhere: read them again only if they hold a key here
            self._look.set()

    def _blocked(self) -> bool:
        """Whether tasks wait here for a key that other nodes' holders help fill."""
        for state in self.gate.limits.values():
            most = state.concurrency
            if state.waiting and most is not None and state.elsewhere:
                if any(state.held.get(key, 0) >= most for key in state.elsewhere):
                    return True
        return False

    async def _reload_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._look.wait(), POLL)
            self._look.clear()
            full, self._full_reload = self._full_reload, False
            try:
                await (self.reload() if full or time.monotonic() - self._swept >= POLL else self.held())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: the poll tries again
                log.warning("nodes: reloading the limits failed: %s", exc)

    async def held(self) -> None:
        """The other nodes' holders, read again."""
        self._elsewhere(await self.db.read(lambda c: hold_store.held_elsewhere(c, self.node)))

    async def reload(self) -> None:
        """The limits as the database has them (applied or deleted on another node, buckets' levels,
        closures) and the other nodes' holders; holds of attempts over are swept first."""
        self._swept = time.monotonic()
        if self.gate.limits and await self.db.write(hold_store.sweep):
            self._freed.set()
        before = self.service.local_changes
        rows, others = await self.db.read(
            lambda c: (limit_store.load_limits(c), hold_store.held_elsewhere(c, self.node))
        )
        if self.service.local_changes != before:  # read before a change here: older than memory
            self._reload_soon()
        elif self.service.reload(rows):
            self.dispatcher.wake()
        self._elsewhere(others)
