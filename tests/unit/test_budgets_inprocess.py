"""Budgets in the core, in this process on a FakeClock: a heartbeat batch past a task's budget stops
the attempt in the same reply; the same batch sent again is not counted twice; an agent over its
budget for the day takes no work until the next UTC day."""

from __future__ import annotations

from datetime import timedelta

from hived.model.schemas import HeartbeatRequest, Lease
from hived.model.usage import Budget, UsageBatch
from hived.usage.budgets import Budgets
from hived.usage.service import UsageService
from hived.usage.views import UsageViews
from tests.unit.inprocess import Core, result, spawn


def wire(hive: Core, agent_budget: Budget | None = None) -> tuple[UsageService, Budgets]:
    usage = UsageService(hive.db, hive.clock)
    budgets = Budgets(hive.db, hive.dispatcher, hive.engine, clock=hive.clock)
    budgets.agent_budget = lambda agent_id: agent_budget
    usage.noted, usage.recorded = budgets.noted, budgets.recorded
    hive.protocol.usage = usage
    return usage, budgets


def beat(agent_id: str, incarnation: int, lease: Lease, seq: int, cost: float) -> HeartbeatRequest:
    batch = UsageBatch(task_id=lease.task_id, lease=lease.lease, seq=seq, cost_usd=cost)
    return HeartbeatRequest(incarnation=incarnation, running=[lease.task_id], usage=[batch])


async def test_a_batch_past_the_task_budget_stops_the_attempt_in_that_reply(hive: Core) -> None:
    usage, _ = wire(hive)
    agent = await spawn(hive)
    task_id = await hive.submit(budget={"cost_usd": 0.5})
    [lease] = await hive.lease(agent.id)
    reply = await hive.protocol.heartbeat(agent.id, beat(agent.id, agent.incarnation, lease, 1, 0.4))
    assert reply.cancel == []
    again = await hive.protocol.heartbeat(agent.id, beat(agent.id, agent.incarnation, lease, 1, 0.4))
    assert again.cancel == []  # the same batch again (a retried request): still $0.40
    assert (await usage.sums("task_id", task_id)).cost_usd == 0.4
    reply = await hive.protocol.heartbeat(agent.id, beat(agent.id, agent.incarnation, lease, 2, 0.2))
    assert reply.cancel == [task_id]
    row = await hive.task(task_id)
    assert row["status"] == "failed" and row["error"].startswith("budget exceeded: task")
    [attempt] = await hive.attempts(task_id)
    assert attempt["reason"] == "budget_exceeded"


async def test_an_agent_over_its_daily_budget_waits_for_the_next_utc_day(hive: Core) -> None:
    _, budgets = wire(hive, Budget(cost_usd=1.0))
    budgets.start()
    try:
        agent = await spawn(hive)
        first = await hive.submit(max_attempts=1)
        [lease] = await hive.lease(agent.id)
        reply = await hive.protocol.heartbeat(agent.id, beat(agent.id, agent.incarnation, lease, 1, 1.5))
        assert reply.cancel == [first] and agent.id in hive.dispatcher.holding.spent
        second = await hive.submit()
        assert await hive.lease(agent.id) == []  # idle, but spent for today
        to_midnight = (
            hive.clock.now().replace(hour=0, minute=0, second=0) + timedelta(days=1)
        ) - hive.clock.now()
        await hive.clock.advance(to_midnight.total_seconds() + 1)
        assert hive.dispatcher.holding.spent == set()
        assert [lease.task_id for lease in await hive.lease(agent.id)] == [second]
    finally:
        await budgets.stop()


async def test_a_task_view_sums_its_usage_per_attempt_and_in_all(hive: Core) -> None:
    usage, _ = wire(hive)
    agent = await spawn(hive)
    task_id = await hive.submit(retry={"initial": 0, "max": 0})
    [first] = await hive.lease(agent.id)
    await hive.protocol.heartbeat(agent.id, beat(agent.id, agent.incarnation, first, 1, 0.4))
    await hive.dispatcher.report(agent.id, [result(first, ok=False)])
    [second] = await hive.lease(agent.id)
    assert second.attempt == 2
    await hive.protocol.heartbeat(agent.id, beat(agent.id, agent.incarnation, second, 1, 0.2))
    await hive.protocol.heartbeat(agent.id, beat(agent.id, agent.incarnation, second, 2, 0.1))
    total, per_attempt, added = await hive.db.read(lambda c: UsageViews.task_read(c, task_id, None))
    assert total == (700_000, 0, 0, 3) and added is None
    assert per_attempt == {1: (400_000, 0, 0, 1), 2: (300_000, 0, 0, 2)}
    assert (await usage.sums("task_id", task_id)).cost_usd == 0.7
    nothing = await hive.submit()
    assert await hive.db.read(lambda c: UsageViews.task_read(c, nothing, None)) == (None, {}, None)
