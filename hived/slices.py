"""Long synchronous work run in slices on the event loop: `await sliced(fn, *args)` runs
`fn` in a greenlet, and `pause()`, called inside it (CEL's evaluator calls it every PAUSE_EVERY
steps), hands the loop back to every other callback for a turn before going on, once the slice has
run SLICE seconds. Without it, a
workflow step's `when` that spends its whole budget (10,000 steps: 50-120 ms on a loaded machine)
held the loop, and `/healthz` with it, for the whole evaluation.

One lock per event loop, held through the turn of the loop that a paused work waits for: however
many runs evaluate at once, a turn carries one slice at most (a first slice aside), and they take
turns in order. (A lock taken only around each slice would let every run slice in every turn: ten
runs evaluating at once made turns of 20-26 ms.) Outside `sliced`, `pause()`
does nothing: the same code runs straight through (the CLI, tests, `success_when`)."""

from __future__ import annotations

import asyncio
import contextvars
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import greenlet

from hived.model import expressions

T = TypeVar("T")
_PAUSED = object()


SLICE = 0.002  # seconds of work between two turns of the loop


class _Slice(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet that may pause (see `pause`) once its slice ends (`until`, perf_counter)."""

    until = 0.0


def pause() -> None:
    """Inside `sliced`, past the slice's time: let the event loop run its other callbacks, then
    come back here. Elsewhere, or within the slice's time: nothing."""
    current = greenlet.getcurrent()
    if isinstance(current, _Slice) and time.perf_counter() >= current.until:
        current.parent.switch(_PAUSED)


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def sliced(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)`, its pauses spent awaiting a turn of the loop; its result or its exception."""
    loop = asyncio.get_running_loop()
    turns = _turns.get(loop) or _turns.setdefault(loop, asyncio.Lock())
    work = _Slice(fn)
    work.gr_context = contextvars.copy_context()
    async with turns:  # the first slice at once, when no other slice waits for its turn
        work.until = time.perf_counter() + SLICE
        result = work.switch(*args)
    while result is _PAUSED:
        async with turns:
            await asyncio.sleep(0)  # the lock is held through the turn: no other slice runs in it
            work.until = time.perf_counter() + SLICE
            result = work.switch()
    return result  # type: ignore[no-any-return]


expressions.pause_hook = pause
