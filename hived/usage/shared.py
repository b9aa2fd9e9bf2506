"""Budgets across the nodes of a cluster (hived.nodes): the sums are read from the database, which every
node writes, but a node checks its budgets only after a report it records itself. So each node tells
the others what it recorded (the keys only: task, run, agent, day; one notification per batch), and
each checks its own budgets over those keys as if it had recorded them: the daemon's budget for the
day holds every node's work once any node's reports cross it, and a run's budget is checked by the
node that drives the run wherever its steps ran. A lost notification delays a check until the next
report (the sums stay exact: they are in the database)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hived.store.wire import Wire

log = logging.getLogger("hived.usage")

KIND = "usage"
KEYS = ("task_id", "run_id", "agent_id", "day")
MOST = 40  # keys per notification (a payload stays well under PostgreSQL's 8,000 bytes)

Recorded = Callable[[list[dict[str, Any]]], Awaitable[None]]


def keys_of(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The distinct keys of recorded reports, in notifications of at most MOST keys."""
    seen = {tuple(row.get(k) for k in KEYS) for row in rows}
    keys = [dict(zip(KEYS, key, strict=True)) for key in sorted(seen, key=repr)]
    return [keys[i : i + MOST] for i in range(0, len(keys), MOST)]


class SharedBudgets:
    def __init__(self, check: Recorded, wire: Wire) -> None:
        self.check = check  # Budgets.recorded: checks every budget over these reports
        self.wire = wire
        self._checking: set[asyncio.Task[None]] = set()
        wire.on(KIND, self._heard)

    async def recorded(self, rows: list[dict[str, Any]]) -> None:
        """Reports recorded here: check here, then tell the other nodes."""
        try:
            await self.check(rows)
        finally:
            for chunk in keys_of(rows):
                await self.wire.send(KIND, {"keys": chunk})

    def _heard(self, sender: str, body: dict[str, Any]) -> None:
        keys = body.get("keys")
        if (
            not isinstance(keys, list)
            or not keys
            or not all(isinstance(k, dict) and "day" in k for k in keys)
        ):
            log.warning("nodes: a usage notification from %s without keys: %.80s", sender, body)
            return
        task = asyncio.create_task(self._check(keys), name="budgets-heard")
        self._checking.add(task)
        task.add_done_callback(self._checking.discard)

    async def _check(self, keys: list[dict[str, Any]]) -> None:
        for day in sorted({k["day"] for k in keys}):
            try:
                await self.check([k for k in keys if k["day"] == day])
            except Exception:  # the next report checks again
                log.exception("budgets: checking another node's reports failed")
