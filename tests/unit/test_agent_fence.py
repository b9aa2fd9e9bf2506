"""hive-agent's self-fencing rule (hivectl.agent.fence): stop the running attempts once hived has been
away for fence_after, once each, and say why in the attempt's end."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from hivectl.agent.fence import fence, fence_loop, fenced_outcome, fencing
from hivectl.agent.handlers import CANCELLED, INTERRUPTED, AttemptOutcome, StopRequest


@dataclass
class Item:
    stop: StopRequest = field(default_factory=StopRequest)
    fenced: float | None = None


@pytest.mark.parametrize(
    ("down_for", "fence_after", "stopped"),
    [(0.0, 9.0, 0), (8.9, 9.0, 0), (9.0, 9.0, 2), (30.0, 9.0, 2)],
)
def test_fence_stops_running_attempts_once_hived_is_away_long_enough(
    down_for: float, fence_after: float, stopped: int
) -> None:
    items = [Item(), Item()]
    assert fence(items, down_for, fence_after) == stopped
    assert [i.stop.reason for i in items] == [INTERRUPTED if stopped else None] * 2
    assert [i.fenced for i in items] == [down_for if stopped else None] * 2


def test_an_attempt_stopped_already_is_left_as_it_was() -> None:
    cancelled = Item()
    cancelled.stop.set(CANCELLED)
    assert fence([cancelled, Item()], 10.0, 9.0) == 1
    assert cancelled.stop.reason == CANCELLED and cancelled.fenced is None


def test_a_fenced_attempt_ends_interrupted_saying_why_and_keeps_its_output() -> None:
    handler_saw = AttemptOutcome.failed(INTERRUPTED, "interrupted: the agent is stopping", None, "out")
    outcome = fenced_outcome(9.4, handler_saw)
    assert (outcome.ok, outcome.reason, outcome.output) == (False, INTERRUPTED, "out")
    assert outcome.error is not None and "hived was unreachable for 9s" in outcome.error
    assert fenced_outcome(None, handler_saw) is handler_saw


async def test_the_loop_fences_when_hived_goes_away_and_not_before() -> None:
    away, looks = [0.0], asyncio.Queue[None]()

    def down_for() -> float:
        looks.put_nowait(None)
        return away[0]

    running = {"t1": Item()}
    loop = asyncio.create_task(fence_loop(down_for, running, 0.05))
    try:
        async with asyncio.timeout(5):
            for _ in range(2):  # two looks while hived answers
                await looks.get()
        assert running["t1"].stop.reason is None
        away[0] = 0.06
        async with asyncio.timeout(5):
            await running["t1"].stop.wait()
        assert running["t1"].fenced == 0.06
    finally:
        loop.cancel()


async def test_no_fence_loop_without_fence_after() -> None:
    assert fencing(None, lambda: 0.0, {}) == []
    tasks = fencing(1.0, lambda: 0.0, {})
    assert len(tasks) == 1
    tasks[0].cancel()
