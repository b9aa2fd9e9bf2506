"""Self-fencing of an agent whose hived is a node of a cluster (hived.nodes). When the agent cannot
reach its hived for `fence_after` seconds (hived sends it at registration: 60 % of `node_timeout`),
the other nodes are about to call that node lost and start its attempts elsewhere; the agent stops
its handlers first, so that no task runs on two nodes at once (hived does the same when it cannot
reach the database). The stopped attempts end `interrupted` with the reason in their error; their
results wait in the outbox like any other and go to hived when it answers again: refused if the
attempt was moved meanwhile, else recorded and retried under the task's policy. On SQLite, or an
older hived, `fence_after` is not sent and nothing changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from hivectl.agent.handlers import INTERRUPTED, AttemptOutcome, StopRequest

log = logging.getLogger("hive-agent")

CHECKS_PER_FENCE = 5  # how often, per fence_after, the agent looks at how long hived has been away


class Stoppable(Protocol):
    stop: StopRequest
    fenced: float | None


def fenced_error(seconds: float) -> str:
    return (
        f"interrupted: hived was unreachable for {seconds:.0f}s, so its node is presumed lost "
        "and the attempt may run on another node (hive-agent stopped the handler)"
    )


def fence(running: list[Stoppable], down_for: float, fence_after: float) -> int:
    """Stop every running attempt not stopped yet when hived has been away for `fence_after`; how
    many were stopped."""
    if down_for < fence_after:
        return 0
    stopped = 0
    for item in running:
        if not item.stop.is_set():
            item.fenced = down_for
            item.stop.set(INTERRUPTED)
            stopped += 1
    return stopped


async def fence_loop(
    down_for: Callable[[], float], running: Mapping[str, Stoppable], fence_after: float
) -> None:
    """Look CHECKS_PER_FENCE times per fence_after whether the running attempts must be stopped."""
    while True:
        await asyncio.sleep(fence_after / CHECKS_PER_FENCE)
        away = down_for()
        if stopped := fence(list(running.values()), away, fence_after):
            log.warning(
                "hived unreachable for %.1fs (its node fences after %.1fs): stopped %d running "
                "attempt(s), which the other nodes will run",
                away,
                fence_after,
                stopped,
            )


def fencing(
    fence_after: float | None, down_for: Callable[[], float], running: Mapping[str, Stoppable]
) -> list[asyncio.Task[None]]:
    """The fence loop as a task, when hived sent `fence_after` (a node of a cluster); else none."""
    if not fence_after:
        return []
    return [asyncio.create_task(fence_loop(down_for, running, fence_after), name="fence")]


def fenced_outcome(fenced: float | None, outcome: AttemptOutcome) -> AttemptOutcome:
    """The end of an attempt the fence stopped says why (its handler saw only `interrupted`)."""
    if fenced is None:
        return outcome
    return AttemptOutcome.failed(INTERRUPTED, fenced_error(fenced), None, outcome.output)
