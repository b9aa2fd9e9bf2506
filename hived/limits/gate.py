"""The limits gate: the dispatcher's one question about flow control, "which ready tasks that name
limits may start now?", and the books behind the answer (the buckets, the units each key holds,
the waiting lines, the limits closed by a throttled report).

A task that names limits waits here, not in the dispatcher's ready queue, so it never takes an
agent slot while it waits. Its limits are looked up once, when it is parked, into a `Ticket` that
stays with it until its attempt ends; it waits in one line only, its home: the line of its first
limit with a key (else of its first limit), so that keys are served round-robin. A dispatch round
`promote`s at most as many as there are free agent slots (only those an agent could take),
reserving their units; the ones assigned are `take`n (the units move from reserved to held, and the
buckets' new levels go in the assignment's commit); the rest go back to their lines at `end_round`.
An attempt's end `release`s what its task held.

A limit with a strategy (`cancel_in_progress`, `cancel_newest`) also keeps its members per key
(rules.Members): `arrived` says which tasks a new one cancels.

Memory is a cache of the database: buckets are loaded from it and written with every assignment that
takes tokens (a compare-and-set on their version); what running tasks hold is derived from the
attempts in flight when hived starts. On a node of a cluster (hived.nodes.limits) the database's
books decide in each claim, and `held` counts the other nodes' holders too (`LimitState.elsewhere`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hived.limits.rules import Members, cluster_wide, displaced, is_full
from hived.limits.state import Gated, LimitState, Ref, Ticket, fits, names, unreserve
from hived.model.limits import parse_throttle, waiting_reason

__all__ = ["Found", "Gated", "LimitGate", "LimitState"]

MAX_SHARED_REFS = 10_000  # distinct sets of limits and keys whose lookups are kept (then started again)
LookedUp = tuple[tuple[Ref, ...], LimitState | None, str | None]  # refs, home, home key
Found = Mapping[tuple[str, str | None], dict[str, tuple[int, int]]]  # a key's tasks: id -> (seq, units)


class LimitGate:
    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now  # epoch seconds (the clock's wall time)
        self.limits: dict[str, LimitState] = {}
        self.waiting: dict[str, Ticket] = {}
        self.promoted: dict[str, Ticket] = {}
        self.holding: dict[str, Ticket] = {}
        self.dirty: set[str] = set()  # buckets taken from in this round, to be written with it
        self._strategies = False  # a limit has a strategy (most have none: `arrived` has nothing to do)
        self._refs: dict[tuple[tuple[str, str | None, int], ...], LookedUp] = {}  # (see _look_up)
        self.changed = asyncio.Event()  # the earliest wake-up may be sooner: the timer looks again
        self.in_database = False  # a node of a cluster: buckets are taken in the claim (hived.nodes.limits)

    # --- definitions ------------------------------------------------------------------------------

    def define(self, state: LimitState) -> None:
        """A new limit, or a re-applied one: the same state then takes the new spec and bucket (what
        is held and waiting stays, and the tickets that point to it still do)."""
        old = self.limits.get(state.spec.name)
        if old is None:
            self.limits[state.spec.name] = old = state
        else:
            old.spec, old.bucket, old.most = state.spec, state.bucket, state.most
            old.concurrency = state.concurrency
            old.updated_at = state.updated_at
        if old.spec.strategy != "queue" and old.members is None:
            old.members = self._members_of(old)
        elif old.spec.strategy == "queue":
            old.members = None
        self._strategies = any(s.members is not None for s in self.limits.values())
        self._refs.clear()  # lookups made before may miss this limit
        self.changed.set()

    def _members_of(self, state: LimitState) -> Members:
        members = Members()
        for ticket in (*self.waiting.values(), *self.promoted.values(), *self.holding.values()):
            for ref_state, key, units in ticket.refs:
                if ref_state is state:
                    members.add(key, ticket.id, ticket.seq, units)
        return members

    def users(self, name: str) -> tuple[int, int]:
        """(tasks holding the limit, tasks waiting for it)."""
        state = self.limits.get(name)
        if state is None:
            return 0, 0
        holding = sum(1 for t in (*self.holding.values(), *self.promoted.values()) if names(t, state))
        return holding, state.waiting

    def remove(self, name: str) -> None:
        """Forget a limit no task holds or waits for (the caller checked `users`)."""
        self.limits.pop(name, None)
        self._strategies = any(s.members is not None for s in self.limits.values())
        self._refs.clear()
        self.changed.set()

    # --- waiting ----------------------------------------------------------------------------------

    def park(self, task: Gated) -> bool:
        """A ready task that names limits waits in its home line; False if it names none that is
        defined (a limit deleted meanwhile no longer applies: the task goes to the ready queue)."""
        ticket = self._ticket(task)
        if ticket is None:
            return False
        self._wait(ticket)
        return True

    def _ticket(self, task: Gated) -> Ticket | None:
        """The task's limits looked up (those not defined left out); None if none is."""
        names = tuple([(ref["name"], ref.get("key"), ref.get("units", 1)) for ref in task.limits])
        found = self._refs.get(names)
        refs, home, home_key = found if found is not None else self._look_up(names)
        if home is None:
            return None
        line = (home_key, task.requires) if task.requires else home_key  # (see Ticket.home_key)
        return Ticket(task.id, task.priority, task.seq, task.requires, refs, home, line)

    def _look_up(self, names: tuple[tuple[str, str | None, int], ...]) -> LookedUp:
        """Limits named so (name, key, units each), looked up; kept for the next task naming the same
        (the refs tuple is then shared: nothing new per task for the collector to track)."""
        refs: list[Ref] = []
        home, home_key = None, None
        for name, key, units in names:
            state = self.limits.get(name)
            if state is None:
                continue
            refs.append((state, key, int(units)))
            if home is None or (key is not None and home_key is None):
                home, home_key = state, key
        if len(self._refs) >= MAX_SHARED_REFS:
            self._refs.clear()
        found = self._refs[names] = (tuple(refs), home, home_key)
        return found

    def _wait(self, ticket: Ticket) -> None:
        task_id = ticket.id
        self.waiting[task_id] = ticket
        ticket.home.lines.push(task_id, ticket.home_key, ticket.priority, ticket.seq)
        for state, key, units in ticket.refs:
            state.waiting += 1
            if state.waiting == 1:
                self.changed.set()  # a limit with waiting tasks may need a wake-up
            if state.members is not None:
                state.members.add(key, task_id, ticket.seq, units)

    def discard(self, task_id: str) -> bool:
        """A waiting (or promoted) task leaves: cancelled, or back to its lines."""
        if (ticket := self.waiting.pop(task_id, None)) is not None:
            ticket.home.lines.discard(task_id)
            for state, key, _units in ticket.refs:
                state.waiting -= 1
                if state.members is not None:
                    state.members.remove(key, task_id)
            return True
        if (ticket := self.promoted.pop(task_id, None)) is not None:
            for state, key, units in ticket.refs:
                unreserve(state, key, units)
                if state.members is not None:
                    state.members.remove(key, task_id)
            return True
        return False

    def waiting_count(self) -> int:
        return len(self.waiting)

    def reason(self, task_id: str) -> str | None:
        """`limit NAME[KEY]` for a waiting task: the first of its limits without room now."""
        ticket = self.waiting.get(task_id)
        if ticket is None:
            return None
        now = self.now()
        for state, key, units in ticket.refs:
            if not state.fits(key, units, now):
                return waiting_reason(state.spec.name, key)
        return None  # room now: it starts at the next dispatch round with a free agent

    def waiting_by_key(self, name: str) -> dict[str | None, int]:
        """How many tasks wait for each key of a limit (for `limit show`: a scan of the waiting)."""
        out: dict[str | None, int] = {}
        for ticket in self.waiting.values():
            for state, key, _units in ticket.refs:
                if state.spec.name == name:
                    out[key] = out.get(key, 0) + 1
        return out

    # --- the strategies ---------------------------------------------------------------------------

    def strategic(self, task_id: str) -> list[tuple[str, str | None]]:
        """The limits with a strategy (name, key) a waiting task names (none: nothing to decide)."""
        ticket = self.waiting.get(task_id) if self._strategies else None
        if ticket is None:
            return []
        return [(s.spec.name, key) for s, key, _units in ticket.refs if s.members is not None]

    def hold_back(self, task_id: str) -> None:
        """A new task waits out of its line (still a member of its keys) while its strategies are
        decided on what the database says (a cluster): no round may start it meanwhile."""
        if (ticket := self.waiting.get(task_id)) is not None:
            ticket.home.lines.discard(task_id)

    def let_go(self, task_id: str) -> None:
        """The strategies decided and the task still waits: back to its line."""
        if (ticket := self.waiting.get(task_id)) is not None:
            ticket.home.lines.push(task_id, ticket.home_key, ticket.priority, ticket.seq)
            self.changed.set()

    def arrived(self, task: Gated, found: Found | None = None) -> list[tuple[str, str]]:
        """A new task, parked, that names limits with a strategy: the tasks to cancel, each with the
        error it ends with. cancel_newest: the task itself when its key was full without it;
        cancel_in_progress: the oldest tasks of its key, running or waiting, until it fits. On a
        node of a cluster, `found` holds the database's tasks of each key (by (name, key): every
        node's holders, the tasks queued for it), counted beside this node's (rules.cluster_wide).
        The ones cancelled that wait here leave the gate now (no round may start them meanwhile)."""
        ticket = self.waiting.get(task.id) if self._strategies else None
        if ticket is None or not any(state.members is not None for state, _key, _units in ticket.refs):
            return []
        out: list[tuple[str, str]] = []
        for state, key, units in ticket.refs:
            spec, members = state.spec, state.members
            if members is None or spec.concurrency is None:
                continue
            if found is None:
                others = members.oldest_first(key, but=task.id)
            else:
                others = cluster_wide(members.of(key), found.get((spec.name, key), {}), task.id, task.seq)
            where = waiting_reason(spec.name, key).removeprefix("limit ")
            if spec.strategy == "cancel_newest" and is_full(others, units, spec.concurrency):
                self.discard(task.id)
                taken = sum(u for _, u in others)
                why = f"limit {where} is full ({taken} of {spec.concurrency} taken; strategy cancel_newest)"
                return [(task.id, f"cancelled at submit: {why}")]
            if spec.strategy == "cancel_in_progress":
                why = f"cancelled: task {task.id} took limit {where} (strategy cancel_in_progress)"
                out += [(old, why) for old in displaced(others, units, spec.concurrency)]
        for task_id, _why in out:
            self.discard(task_id)  # a waiting one; a running one ends through its cancel
        return out

    # --- a dispatch round -------------------------------------------------------------------------

    def promote(self, free: int, can_run: Callable[[frozenset[str]], bool]) -> list[Ticket]:
        """At most `free` waiting tasks that may start now and that an agent with a free slot could
        take, their units reserved; round-robin across the keys of each limit."""
        if not self.waiting or free <= 0:
            return []
        now, out = self.now(), []
        able: dict[frozenset[str], bool] = {}  # can_run, asked once per `requires` in a round

        def runnable(requires: frozenset[str]) -> bool:
            known = able.get(requires)
            if known is None:
                known = able[requires] = can_run(requires)
            return known

        for state in self.limits.values():
            keys = state.lines.keys_in_turn() if len(out) < free and len(state.lines) else []
            while keys and len(out) < free:  # a pass serves each key once; blocked keys drop out
                served = []
                for key in keys:
                    if len(out) >= free:
                        break
                    task_id = state.lines.head(key)
                    ticket = self.waiting.get(task_id) if task_id else None
                    if ticket is None or not runnable(ticket.requires) or not fits(ticket, now):
                        continue
                    state.lines.pop(key)
                    self._reserve(ticket)
                    out.append(ticket)
                    served.append(key)
                keys = served
        return out

    def _reserve(self, ticket: Ticket) -> None:
        task_id = ticket.id
        del self.waiting[task_id]
        self.promoted[task_id] = ticket
        for state, key, units in ticket.refs:
            state.waiting -= 1
            reserved = state.reserved
            reserved[key] = reserved.get(key, 0) + units
            if state.bucket is not None:
                state.reserved_tokens += units

    def take(self, task: Gated) -> None:
        """A promoted task is assigned: its reserved units are held, its tokens taken."""
        task_id = task.id
        ticket = self.promoted.pop(task_id, None)
        if ticket is None:
            return
        now = None
        for state, key, units in ticket.refs:
            unreserve(state, key, units)
            held = state.held
            held[key] = held.get(key, 0) + units
            if (bucket := state.bucket) is not None:
                bucket.take(units, now if now is not None else (now := self.now()))
                self.dirty.add(state.spec.name)
        if now is not None and not self.changed.is_set():
            self.changed.set()  # the next refill is due later: the timer looks again
        ticket.home.lines.served(ticket.home_key)
        self.holding[task_id] = ticket

    def end_round(self) -> list[Ticket]:
        """The promoted tasks no agent took go back to their lines; returns them."""
        left = list(self.promoted.values())
        self.promoted.clear()
        for ticket in left:
            for state, key, units in ticket.refs:
                unreserve(state, key, units)
            self._wait(ticket)  # (still a member of its keys)
        return left

    def bucket_writes(self) -> list[dict[str, Any]]:
        """The buckets taken from since the last call, each with its new version (written with the
        assignments of this round; `version` - 1 is what the database must still hold)."""
        rows: list[dict[str, Any]] = []
        if self.in_database:
            self.dirty.clear()
            return rows
        for name in sorted(self.dirty):
            state = self.limits.get(name)
            if state is not None and (bucket := state.bucket) is not None:
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
        ticket = self._ticket(task)
        if ticket is None:
            return
        for state, key, units in ticket.refs:
            state.held[key] = state.held.get(key, 0) + units
            if state.members is not None:
                state.members.add(key, task.id, task.seq, units)
        self.holding[task.id] = ticket

    def release(self, task_id: str, give_back: bool = False) -> None:
        """The attempt ended (or its assignment was not committed: `give_back` returns the tokens)."""
        ticket = self.holding.pop(task_id, None)
        if ticket is None:
            return
        for state, key, units in ticket.refs:
            left = state.held.get(key, 0) - units
            if left > 0:
                state.held[key] = left
            else:
                state.held.pop(key, None)
            if give_back and state.bucket is not None:
                state.bucket.give_back(units, self.now())
            if state.members is not None:
                state.members.remove(key, task_id)

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
