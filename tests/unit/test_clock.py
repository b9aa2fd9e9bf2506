"""The FakeClock that in-process tests drive time with: sleepers wake at their deadlines, in order,
and only when the clock is advanced; timed waits end on their event or on the clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from hived.clock import FakeClock


async def test_sleepers_wake_in_order_at_their_deadlines() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.ensure_future(sleeper(n, s)) for n, s in (("late", 5.0), ("early", 1.0), ("mid", 3.0))]
    await clock.until_sleeping(3)
    await clock.advance(0.999)
    assert woke == []
    await clock.advance(4.001)
    assert woke == [("early", 1.0), ("mid", 3.0), ("late", 5.0)]
    assert clock.now() - FakeClock().now() == timedelta(seconds=5)
    await asyncio.gather(*tasks)


@pytest.mark.parametrize(("set_event", "advance", "expected"), [(True, 0.0, True), (False, 10.0, False)])
async def test_a_timed_wait_ends_on_its_event_or_its_timeout(
    set_event: bool, advance: float, expected: bool
) -> None:
    clock, event = FakeClock(), asyncio.Event()
    waiting = asyncio.ensure_future(clock.wait(event, 10.0))
    await clock.until_sleeping()
    if set_event:
        event.set()
    await clock.advance(advance)
    assert await asyncio.wait_for(waiting, 1) is expected
    assert clock.sleepers == 0  # the timer of a wait that ended is gone
