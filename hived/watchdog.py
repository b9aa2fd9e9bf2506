"""A watchdog of the event loop, to find what makes hived slow to answer: with HIVE_LOOP_WATCHDOG=MS
a thread asks the loop to run a callback every MS/4 and logs (warning, logger `hived.watchdog`) each
time that callback waited more than MS, with the stack of the loop's thread taken while it waited
(the code that held the loop then). It measures what a request waits for: one long callback or many
short ones, a full collection of the garbage collector included. Off by default; diagnosis only.

`Watch` is the rule (pure, its clock given); `LoopWatchdog` is its thread."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("hived.watchdog")
ENV = "HIVE_LOOP_WATCHDOG"


def threshold_from_env(env: dict[str, str] | None = None) -> float | None:
    """HIVE_LOOP_WATCHDOG=MS (a positive number of milliseconds) as seconds; None when unset.
    Anything else is refused with a message naming the variable."""
    raw = (os.environ if env is None else env).get(ENV, "").strip()
    if not raw:
        return None
    try:
        ms = float(raw)
    except ValueError:
        ms = -1.0
    if not 0 < ms < 3_600_000:
        raise ValueError(f"{ENV}={raw!r}: give a number of milliseconds over 0 (say 50)")
    return ms / 1000


@dataclass
class Stall:
    waited: float  # seconds the ping waited for the loop
    stack: str  # the loop thread's stack once the wait passed the threshold ("" if not taken)


class Watch:
    """One ping at a time: `ping(now)` when it is sent, `overdue(now)` while it waits (True once,
    when it first passes the threshold: take the stack then), `pong(now)` when the loop ran it
    (a Stall when it waited over the threshold)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.sent: float | None = None
        self.stack = ""
        self._flagged = False

    def ping(self, now: float) -> None:
        self.sent, self.stack, self._flagged = now, "", False

    def overdue(self, now: float) -> bool:
        if self.sent is None or self._flagged or now - self.sent <= self.threshold:
            return False
        self._flagged = True
        return True

    def pong(self, now: float) -> Stall | None:
        if self.sent is None:
            return None
        waited, self.sent = now - self.sent, None
        return Stall(waited, self.stack) if waited > self.threshold else None


def thread_stack(thread_id: int) -> str:
    frame = sys._current_frames().get(thread_id)
    return "".join(traceback.format_stack(frame)) if frame is not None else ""


class LoopWatchdog:
    """The thread: pings `loop` every threshold/4, reports each Stall to `report`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        threshold: float,
        report: Callable[[Stall], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.loop, self.watch = loop, Watch(threshold)
        self.report = report or _log_stall
        self.clock = clock or time.monotonic
        self.loop_thread = threading.get_ident()  # made on the loop's thread
        self._answered = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loop-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._answered.set()
        self._thread.join(5)

    def _pong(self) -> None:
        stall = self.watch.pong(self.clock())
        self._answered.set()
        if stall is not None:
            self.report(stall)

    def _run(self) -> None:
        period = self.watch.threshold / 4
        while not self._stop.is_set():
            self._answered.clear()
            self.watch.ping(self.clock())
            try:
                self.loop.call_soon_threadsafe(self._pong)
            except RuntimeError:  # the loop closed
                return
            while not self._answered.wait(period):
                if self.watch.overdue(self.clock()):
                    self._take_stack()
            self._stop.wait(period)

    def _take_stack(self) -> None:
        self.watch.stack = thread_stack(self.loop_thread)


def _log_stall(stall: Stall) -> None:
    log.warning("event loop stalled %.0f ms; the loop's thread was in:\n%s", stall.waited * 1000, stall.stack)


def start_from_env(loop: asyncio.AbstractEventLoop) -> LoopWatchdog | None:
    """Call on the loop's thread; a started watchdog when HIVE_LOOP_WATCHDOG is set."""
    threshold = threshold_from_env()
    if threshold is None:
        return None
    dog = LoopWatchdog(loop, threshold)
    dog.start()
    log.warning("loop watchdog on: stalls over %g ms are logged with the loop's stack", threshold * 1000)
    return dog
