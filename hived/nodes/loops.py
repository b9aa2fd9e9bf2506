"""A node's background loops (hived.nodes): started together, stopped together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


class Loops:
    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, *named: tuple[str, Coroutine[Any, Any, None]]) -> None:
        self.tasks = [asyncio.create_task(loop, name=name) for name, loop in named]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []
