"""The limits service: defines limits (`kind: Limit`, `PUT /limits/{name}`), checks and renders
the `limits` of a submission (unknown names, a key that cannot be rendered, more units than a limit
can ever give: refused with the field named, before anything is stored), shows limits with their
live state, and runs the gate's timer (a bucket refilled, a limit reopened: the dispatcher looks
again). SQL stays in hived.store.limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from hived.clock import SYSTEM_CLOCK, Clock
from hived.errors import Conflict, Invalid, NotFound
from hived.limits.gate import Found, Gated, LimitGate, LimitState
from hived.limits.rules import fresh_bucket, render_key, resize
from hived.model.expressions import ExpressionError
from hived.model.limits import AppliedLimit, LimitInfo, LimitKeyInfo, LimitRef, LimitSpec
from hived.store import limits as limit_store
from hived.store.db import Database

log = logging.getLogger("hived.limits")
Cancel = Callable[[str, str], Awaitable[bool]]  # the dispatcher's cancel: task id, error
# A cluster's tasks of these (name, key) older than a seq, every node's (hived.nodes.limits).
Members = Callable[[list[tuple[str, str | None]], int], Awaitable[Found]]


def _state(row: dict[str, Any]) -> LimitState:
    """A stored limit as the gate keeps it."""
    spec = LimitSpec.model_validate(row["definition"])
    bucket = None
    if (per_second := spec.per_second) is not None and (size := spec.bucket_size) is not None:
        stored = fresh_bucket(per_second, size, row["tokens_at"] or 0.0)
        stored.tokens = row["tokens"] if row["tokens"] is not None else size
        stored.version = row["version"]
        bucket = resize(stored, per_second, size, stored.at)  # the size may have been changed
    state = LimitState(spec, bucket, row["created_at"], row["updated_at"])
    state.closed_until = row["closed_until"] or 0.0
    return state


class LimitsService:
    def __init__(self, db: Database, gate: LimitGate, clock: Clock = SYSTEM_CLOCK) -> None:
        self.db = db
        self.gate = gate
        self.clock = clock
        self.members: Members | None = None  # hived.nodes: the database's tasks of keys (a cluster)
        self.wake: Callable[[], None] = lambda: None  # set by the composition root: the dispatcher's
        self._timer: asyncio.Task[None] | None = None
        self._cancels: set[asyncio.Task[bool]] = set()  # the strategies' cancels under way
        self.announce: Callable[[str], Awaitable[None]] | None = None  # hived.nodes: tell the other nodes
        self.local_changes = 0  # counts this node's applies and deletes (hived.nodes.limits: stale reads)

    async def load(self) -> int:
        """Every stored limit into the gate (before the dispatcher recovers its tasks)."""
        rows = await self.db.read(limit_store.load_limits)
        for row in rows:
            self.gate.define(_state(row))
        return len(rows)

    # --- definitions ------------------------------------------------------------------------------

    async def apply(self, spec: LimitSpec) -> AppliedLimit:
        """Create or change a limit. A changed rate or burst keeps the bucket's level (capped at the
        new size); what running tasks hold and what waits stays."""
        now, epoch = self.clock.now(), self.clock.now().timestamp()
        definition = spec.model_dump(mode="json", exclude_none=True)
        current = self.gate.limits.get(spec.name)
        if current is not None and current.spec == spec:
            return AppliedLimit(name=spec.name, action="unchanged")
        state = LimitState(spec, None, current.created_at if current else now, now)
        if (per_second := spec.per_second) is not None and (size := spec.bucket_size) is not None:
            old = current.bucket if current is not None else None
            state.bucket = (
                resize(old, per_second, size, epoch) if old else fresh_bucket(per_second, size, epoch)
            )
        if current is None:
            bucket = state.bucket
            row = {
                "name": spec.name,
                "definition": definition,
                "tokens": bucket.tokens if bucket else None,
                "tokens_at": bucket.at if bucket else None,
                "version": 0,
                "closed_until": 0.0,
                "created_at": now,
                "updated_at": now,
            }
            await self.db.write(lambda c: limit_store.insert_limit(c, row))
        else:
            await self.db.write(lambda c: limit_store.update_definition(c, spec.name, definition, now))
        self.gate.define(state)
        self.local_changes += 1
        self.wake()
        if self.announce is not None:
            await self.announce(spec.name)
        return AppliedLimit(name=spec.name, action="created" if current is None else "configured")

    async def delete(self, name: str) -> LimitInfo:
        """Remove a limit (returns it as it was); Conflict while tasks hold it or wait for it. A task
        that names it and comes back later (a retry's backoff over, a scheduled one due, a pause
        lifted) runs without it."""
        info = self.info(name)
        holding, waiting = self.gate.users(name)
        if holding or waiting:
            raise Conflict(
                f"limit {name!r} is in use: {holding} task(s) hold it, {waiting} wait for it "
                "(delete it once they are done, or cancel them)"
            )
        state = self.gate.limits[name]
        self.gate.remove(name)  # no await since the check: no task took it meanwhile
        self.local_changes += 1
        try:
            await self.db.write(lambda c: limit_store.delete_limit(c, name))
        except BaseException:
            self.gate.define(state)
            raise
        if self.announce is not None:
            await self.announce(name)
        return info

    def reload(self, rows: list[dict[str, Any]]) -> bool:
        """The stored limits as another node left them (hived.nodes): one applied or changed there is
        defined here, one deleted there is forgotten (once no task here holds or waits for it), and
        the buckets' levels and closures are the database's. Returns whether anything changed."""
        changed, stored = False, {row["name"]: row for row in rows}
        for name, row in stored.items():
            state = self.gate.limits.get(name)
            if state is None or state.updated_at != row["updated_at"]:
                self.gate.define(_state(row))
                changed = True
                continue
            state.closed_until = max(state.closed_until, row["closed_until"] or 0.0)
            if (bucket := state.bucket) is not None and row["tokens"] is not None and row["tokens_at"]:
                bucket.tokens, bucket.at = min(row["tokens"], bucket.size), row["tokens_at"]
        for name in [n for n in self.gate.limits if n not in stored]:
            if self.gate.users(name) == (0, 0):
                self.gate.remove(name)
                changed = True
        return changed

    # --- reads ------------------------------------------------------------------------------------

    def list(self) -> list[LimitInfo]:
        return [self.info(name) for name in sorted(self.gate.limits)]

    def info(self, name: str) -> LimitInfo:
        state = self.gate.limits.get(name)
        if state is None:
            raise NotFound(f"limit {name!r} not found")
        epoch = self.clock.now().timestamp()
        waiting = self.gate.waiting_by_key(name)
        spec, keys = state.spec, set(state.held) | set(waiting)
        closed = state.closed_until > epoch
        return LimitInfo(
            name=spec.name,
            rate=spec.rate,
            burst=int(spec.bucket_size) if spec.bucket_size is not None else None,
            concurrency=spec.concurrency,
            strategy=spec.strategy,
            tokens=round(state.bucket.level(epoch), 3) if state.bucket else None,
            holders=sum(state.held.values()),
            waiting=state.waiting,
            closed_until=datetime.fromtimestamp(state.closed_until, UTC) if closed else None,
            keys=[
                LimitKeyInfo(key=key, holders=state.held.get(key, 0), waiting=waiting.get(key, 0))
                for key in sorted(keys, key=lambda k: (k is not None, k or ""))
            ],
            created_at=state.created_at,
            updated_at=state.updated_at,
        )

    # --- submissions ------------------------------------------------------------------------------

    def resolve(self, refs: list[LimitRef], payload: dict[str, Any]) -> list[dict[str, Any]]:
        """The `limits` of a submission as stored ({name, key, units}, each key rendered against the
        payload); Invalid naming the field (`limits.0.key: ...`) for an unknown limit, a key that
        cannot be rendered or is not a string, or more units than the limit can ever give."""
        out, defined = [], self.gate.limits
        for i, ref in enumerate(refs):
            state = defined.get(ref.name)
            if state is None:
                known = ", ".join(sorted(defined)) or "none defined"
                raise Invalid(f"limits.{i}.name: unknown limit {ref.name!r} (known: {known})")
            key = None
            if ref.key is not None:
                try:
                    key = render_key(ref.key, payload)
                except (ExpressionError, ValueError) as exc:
                    raise Invalid(f"limits.{i}.key: {exc}") from None
            if ref.units > (most := state.most):
                raise Invalid(
                    f"limits.{i}.units: {ref.units} is more than limit {ref.name!r} ever gives ({most:g})"
                )
            out.append({"name": ref.name, "key": key, "units": ref.units})
        return out

    def arrived(self, task: Gated, cancel: Cancel) -> list[asyncio.Task[bool]]:
        """A new task was queued: the strategies of its limits cancel it (cancel_newest, its key
        full) or older tasks of its key (cancel_in_progress), through `cancel` (the dispatcher's,
        with the error); returns those cancels, under way. On a node of a cluster the key's tasks
        on the other nodes count too: read from the database first (`members`), in one job."""
        if self.members is not None and (wants := self.gate.strategic(task.id)):
            self.gate.hold_back(task.id)
            return [self._track(self._arrived_cluster(task, wants, cancel))]
        return [self._track(cancel(task_id, error)) for task_id, error in self._decided(task)]

    def _decided(self, task: Gated, found: Found | None = None) -> list[tuple[str, str]]:
        decided = self.gate.arrived(task, found)
        for task_id, error in decided:
            log.info("limits: task %s %s", task_id, error)
        return decided

    async def _arrived_cluster(
        self, task: Gated, wants: list[tuple[str, str | None]], cancel: Cancel
    ) -> bool:
        assert self.members is not None
        try:
            found = await self.members(wants, task.seq)
        except Exception as exc:  # the database is away: this node's tasks decide, as on one node
            log.warning("limits: reading the other nodes' tasks of %s failed: %s", wants, exc)
            found = None
        try:
            jobs = [self._track(cancel(task_id, error)) for task_id, error in self._decided(task, found)]
        finally:
            self.gate.let_go(task.id)
            self.wake()
        if jobs:
            await asyncio.wait(jobs)
        return bool(jobs)

    def _track(self, coro: Awaitable[bool]) -> asyncio.Task[bool]:
        job = asyncio.ensure_future(coro)
        self._cancels.add(job)
        job.add_done_callback(self._cancelled)
        return job

    def _cancelled(self, job: asyncio.Task[bool]) -> None:
        self._cancels.discard(job)
        if not job.cancelled() and (exc := job.exception()) is not None:
            log.warning("limits: a strategy's cancel failed: %s", exc)

    # --- the timer --------------------------------------------------------------------------------

    def start(self) -> None:
        self._timer = asyncio.create_task(self._wake_loop(), name="limits")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None

    async def _wake_loop(self) -> None:
        """Kick the dispatcher when time alone lets a waiting task start (a refill, a reopening)."""
        while True:
            self.gate.changed.clear()
            delay = self.gate.next_wake()
            if not await self.clock.wait(self.gate.changed, delay) and delay is not None:
                self.wake()
                await self.clock.sleep(0)
