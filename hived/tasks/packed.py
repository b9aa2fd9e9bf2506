"""A queued task as a tuple of atoms, for the garbage collector's sake. No I/O.

A task waits in the dispatcher's book (ready, retrying, scheduled) far longer than it runs, and a
queue can hold hundreds of thousands. Each `ReadyTask` there, with its payload and options dicts,
would be two or three objects the collector tracks, and a full collection visits them all while the
event loop stands still (281 ms at 271,000 queued tasks). So a waiting task is kept as a plain
tuple of str, int, float, None, bytes and datetime only, which CPython stops tracking at its first
collection: its payload and options as `marshal` bytes (written and read by this process only), its
`requires` as a string. The `ReadyTask` is built again when the task is assigned (or asked for);
tasks with the same options then share one options dict (read only, as options always are).
A payload or options that marshal cannot write (not plain JSON values) stay objects: correct, only
tracked."""

from __future__ import annotations

import functools
import marshal
from typing import Any

from hived.tasks.attempts import ReadyTask, capability_set

# Where each field sits in a packed task.
ID, TYPE, PRIORITY, SEQ, REQUIRES, ATTEMPTS, MAX_ATTEMPTS, RUN_ID, CREATED, THROTTLED = range(10)
PAYLOAD, OPTIONS = 10, 11

Packed = tuple[Any, ...]


@functools.lru_cache(maxsize=4096)
def requires_key(requires: frozenset[str]) -> str:
    """A `requires` set as one string (capabilities hold no whitespace)."""
    return " ".join(sorted(requires))


@functools.lru_cache(maxsize=4096)
def requires_of(key: str) -> frozenset[str]:
    """The shared set a `requires_key` stands for."""
    return capability_set(tuple(key.split()))


def _blob(value: Any) -> Any:
    if value is None:
        return None
    try:
        return marshal.dumps(value)
    except ValueError:  # not plain JSON values: kept as they are (tracked, still correct)
        return value


def _value(blob: Any) -> Any:
    return marshal.loads(blob) if type(blob) is bytes else blob


@functools.lru_cache(maxsize=1024)
def _options(blob: bytes) -> Any:
    """Options read back, one dict per distinct options (most tasks share a few): read only, like
    every task's options (nothing writes them once the task is submitted)."""
    return marshal.loads(blob)


def pack(task: ReadyTask) -> Packed:
    return (
        task.id,
        task.type,
        task.priority,
        task.seq,
        requires_key(task.requires),
        task.attempts,
        task.max_attempts,
        task.run_id,
        task.created_at,
        task.throttled,
        _blob(task.payload),
        _blob(task.options),
    )


def unpack(packed: Packed) -> ReadyTask:
    return ReadyTask(
        packed[ID],
        packed[TYPE],
        _value(packed[PAYLOAD]),
        packed[PRIORITY],
        packed[SEQ],
        requires_of(packed[REQUIRES]),
        _options(options) if type(options := packed[OPTIONS]) is bytes else options,
        packed[ATTEMPTS],
        packed[MAX_ATTEMPTS],
        packed[RUN_ID],
        packed[CREATED],
        packed[THROTTLED],
    )
