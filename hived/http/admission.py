"""At most N of something start per turn of the event loop: `await admission()` returns at once while
this turn has places, else in a later turn, first come first served. For `/events`: 500 streams
connecting in the same instant each start with a few callbacks' work (their head, their tasks); all
of them in one turn made it a turn of 50-100 ms on a loaded machine, and a `/healthz` that came
with them waited for it."""

from __future__ import annotations

import asyncio
from collections import deque


class PerTurn:
    def __init__(self, per_turn: int) -> None:
        self.per_turn = per_turn
        self.used = 0  # places taken in this turn
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._turn_scheduled = False

    async def __call__(self) -> None:
        if self.used < self.per_turn and not self._waiting:
            self.used += 1
            self._next_turn_soon()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._next_turn_soon()
        await waiter

    def _next_turn_soon(self) -> None:
        if not self._turn_scheduled:
            self._turn_scheduled = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        """A new turn: its places go to those waiting, in order."""
        self._turn_scheduled = False
        self.used = 0
        while self._waiting and self.used < self.per_turn:
            waiter = self._waiting.popleft()
            if not waiter.done():  # a client gone while it waited: its place goes to the next
                waiter.set_result(None)
                self.used += 1
        if self._waiting or self.used:
            self._next_turn_soon()
