"""The rules of flow control, pure: a token bucket on an injected time (seconds as floats, no
clock read here), units held per key under a concurrency, round-robin across the keys of one
limit, and the strategies of a full key (cancel the newest, or the oldest in progress). No I/O; the
gate (hived/limits/gate.py) keeps their state for the dispatcher."""

from __future__ import annotations

import heapq
import re
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hived.model.limits import MAX_KEY_CHARS
from hived.tasks.routing import order


@dataclass
class Bucket:
    """A token bucket: `per_second` tokens flow in, up to `size`; `tokens` was the level at time
    `at` (seconds). Time that goes backwards (a wall clock set back) adds nothing. `version` counts
    the committed changes (a compare-and-set token for the store)."""

    per_second: float
    size: float
    tokens: float
    at: float
    version: int = 0

    def level(self, now: float) -> float:
        return min(self.size, self.tokens + max(0.0, now - self.at) * self.per_second)

    def refill(self, now: float) -> None:
        self.tokens, self.at = self.level(now), max(self.at, now)

    def has(self, units: float, now: float) -> bool:
        # the level is never below `tokens` (time only adds): most checks need no arithmetic
        return self.tokens + 1e-9 >= units or self.level(now) + 1e-9 >= units

    def take(self, units: float, now: float) -> None:
        """Take `units` (the caller checked `has`); the level may not go below zero."""
        self.refill(now)
        self.tokens = max(0.0, self.tokens - units)

    def give_back(self, units: float, now: float) -> None:
        self.refill(now)
        self.tokens = min(self.size, self.tokens + units)

    def seconds_until(self, units: float, now: float) -> float:
        """How long until `units` are in the bucket (0 if they are now; inf if never)."""
        missing = units - self.level(now)
        if missing <= 1e-9:
            return 0.0
        if units > self.size or self.per_second <= 0:
            return float("inf")
        return missing / self.per_second


def resize(bucket: Bucket, per_second: float, size: float, now: float) -> Bucket:
    """The bucket after its limit was re-applied with another rate or burst: the level carries over,
    capped at the new size (a raised limit does not grant a new burst at once)."""
    level = min(size, bucket.level(now))
    return Bucket(per_second, size, level, max(bucket.at, now), bucket.version)


def fresh_bucket(per_second: float, size: float, now: float) -> Bucket:
    """A new limit's bucket starts full."""
    return Bucket(per_second, size, size, now)


def has_room(held: int, units: int, concurrency: int | None) -> bool:
    """Whether `units` more fit under a concurrency beside `held` (no concurrency: always)."""
    return concurrency is None or held + units <= concurrency


class RoundRobin:
    """The waiting tasks of one limit, a line per key, served round-robin across keys: after a key
    is served it goes to the back of the rotation, so one busy key cannot starve the others.
    A line is a heap of (order(priority, seq), task id): higher priority first, then submission
    order. Removal is lazy: `live` says which task ids still wait here."""

    def __init__(self) -> None:
        self.lines: dict[Hashable, list[tuple[int, str]]] = {}
        self.rotation: OrderedDict[Hashable, None] = OrderedDict()  # an ordered set of keys
        self.live: dict[str, Hashable] = {}  # task id -> its key

    def __len__(self) -> int:
        return len(self.live)

    def push(self, task_id: str, key: Hashable, priority: int, seq: int) -> None:
        if task_id in self.live:
            return
        self.live[task_id] = key
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = []
            self.rotation[key] = None
        heapq.heappush(line, (order(priority, seq), task_id))

    def discard(self, task_id: str) -> None:
        self.live.pop(task_id, None)

    def head(self, key: Hashable) -> str | None:
        """The first live task of `key`'s line (the line is dropped once empty)."""
        line, live = self.lines.get(key), self.live
        while line and line[0][1] not in live:
            heapq.heappop(line)
        if line:
            return line[0][1]
        if key in self.lines:
            del self.lines[key]
            del self.rotation[key]
        return None

    def pop(self, key: Hashable) -> None:
        """The head of `key`'s line, just returned by `head`, leaves it."""
        _order, task_id = heapq.heappop(self.lines[key])
        self.live.pop(task_id, None)

    def keys_in_turn(self) -> list[Hashable]:
        """The keys with waiting tasks, in the order they are to be served."""
        return [key for key in list(self.rotation) if self.head(key) is not None]

    def served(self, key: Hashable) -> None:
        """`key` was served: it goes to the back of the rotation."""
        if key in self.rotation:
            self.rotation.move_to_end(key)


class Members:
    """The tasks of a limit with a strategy, per key: (seq, units) of each task that waits for the
    key or holds it, for the strategies to find the newest and oldest."""

    def __init__(self) -> None:
        self.by_key: dict[str | None, dict[str, tuple[int, int]]] = {}

    def add(self, key: str | None, task_id: str, seq: int, units: int) -> None:
        self.by_key.setdefault(key, {})[task_id] = (seq, units)

    def remove(self, key: str | None, task_id: str) -> None:
        tasks = self.by_key.get(key)
        if tasks is not None and tasks.pop(task_id, None) is not None and not tasks:
            del self.by_key[key]

    def oldest_first(self, key: str | None, but: str) -> list[tuple[str, int]]:
        """(task id, units) of the key's tasks other than `but`, oldest (lowest seq) first."""
        tasks = self.by_key.get(key, {})
        return [(t, units) for t, (_seq, units) in sorted(tasks.items(), key=lambda i: i[1]) if t != but]

    def of(self, key: str | None) -> dict[str, tuple[int, int]]:
        """The key's tasks: task id -> (seq, units)."""
        return self.by_key.get(key, {})


def cluster_wide(
    here: dict[str, tuple[int, int]], there: dict[str, tuple[int, int]], new: str, seq: int
) -> list[tuple[str, int]]:
    """A key's tasks on a node of a cluster, as the strategies see them, oldest first: this node's
    (`here`, the gate's) and the database's (`there`: every node's holders, the tasks queued for it),
    each task once; only those older than the new task (`seq`): a newer one, submitted meanwhile on
    another node, decides about this one when it arrives, not the other way round."""
    tasks = {**there, **here}
    older = [(s, t, units) for t, (s, units) in tasks.items() if s < seq and t != new]
    return [(t, units) for _s, t, units in sorted(older)]


def queued_units(limits: object, name: str, key: str | None) -> int:
    """The units a queued task's stored `limits` take of `name`[`key`] (0 if none)."""
    if not isinstance(limits, list):
        return 0
    units = 0
    for ref in limits:
        if isinstance(ref, dict) and ref.get("name") == name and ref.get("key") == key:
            units += int(ref.get("units", 1))
    return units


def is_full(others: list[tuple[str, int]], units: int, concurrency: int) -> bool:
    """cancel_newest: whether a new task of `units` finds its key full (the units of the key's
    other tasks, waiting or holding, leave no room under the concurrency)."""
    return not has_room(sum(u for _, u in others), units, concurrency)


def displaced(others: list[tuple[str, int]], units: int, concurrency: int) -> list[str]:
    """cancel_in_progress: the tasks a new one of `units` displaces from its key (`others`, oldest
    first): the oldest, one after another, until the rest and the new one fit the concurrency."""
    held, out = sum(u for _, u in others), []
    for task_id, task_units in others:
        if has_room(held, units, concurrency):
            break
        out.append(task_id)
        held -= task_units
    return out


def render_key(template: str, payload: dict[str, Any]) -> str:
    """A limit's key for one task: a literal, or `${{ expr }}` templates (CEL over `payload`)
    spliced in; ValueError (from ExpressionError too) unless every part is a string."""
    pieces = []
    for text, expression, path in _template(template):
        if expression is None:
            pieces.append(text)
            continue
        value = _at(path, payload) if path else None
        if value is None:  # not a plain path to a string: CEL decides (and words its errors)
            from hived.model.expressions import evaluate

            value = evaluate(expression, {"payload": payload})
        if not isinstance(value, str):
            raise ValueError(f"{text!r} gave {value!r}, not a string")
        pieces.append(value)
    key = "".join(pieces)
    if not key or len(key) > MAX_KEY_CHARS:
        raise ValueError(f"the key {key!r} must be 1-{MAX_KEY_CHARS} characters")
    return key


PATH_RE = re.compile(r"^payload(\.[A-Za-z_][A-Za-z0-9_]*)+$")
Part = tuple[str, str | None, tuple[str, ...] | None]  # text; its expression, its payload path


@lru_cache(maxsize=1024)
def _template(template: str) -> tuple[Part, ...]:
    """A key template split once (a key is rendered at every submit): literal text, and each
    `${{ }}` with its expression and, for a plain `payload.a.b`, the path to read directly."""
    from hived.model.graph import TEMPLATE_RE

    parts: list[Part] = []
    at = 0
    for match in TEMPLATE_RE.finditer(template):
        if match.start() > at:
            parts.append((template[at : match.start()], None, None))
        expression = match.group(1)
        path = tuple(expression.split(".")[1:]) if PATH_RE.match(expression) else None
        parts.append((match.group(0), expression, path))
        at = match.end()
    if at < len(template) or not parts:
        parts.append((template[at:], None, None))
    return tuple(parts)


def _at(path: tuple[str, ...], payload: dict[str, Any]) -> str | None:
    """`payload.a.b` read directly when it is a string (what CEL would give, a hundred times
    faster); None for anything else."""
    value: Any = payload
    for name in path:
        if not isinstance(value, dict) or name not in value:
            return None
        value = value[name]
    return value if isinstance(value, str) else None
