"""Item 17 of the hardening issue: recycles (max_tasks, max_memory) go through the restart policy,
its delay and its limit; an agent whose own footprint is over max_memory ends `failed` saying so.
In this process: the agent manager and health sweep on a FakeClock and in-memory processes."""

from __future__ import annotations

import asyncio

from hived.agents.heartbeats import HealthMonitor
from hived.agents.live import LiveAgent
from hived.model.schemas import HeartbeatRequest
from tests.unit.inprocess import Core, register, result, spawn


async def recycled(hive: Core, agent: LiveAgent, health: HealthMonitor) -> None:
    """One health sweep recycles the agent; returns once its process ended and hived followed up."""
    watcher = agent.watcher
    assert watcher is not None
    await health.sweep()
    assert agent.recycling
    await asyncio.wait_for(watcher, 5)


async def restarted_after(hive: Core, agent: LiveAgent, delay: float) -> None:
    """Nothing is started before `delay` has passed on the clock; then the next incarnation is."""
    spawned = len(hive.processes.spawned)
    assert agent.pending_restart is not None
    await hive.clock.advance(delay - 0.01)
    assert len(hive.processes.spawned) == spawned
    await hive.clock.advance(0.01)
    await asyncio.wait_for(agent.pending_restart, 5)
    await register(hive, agent)


async def test_item17_recycles_for_max_tasks_back_off_and_fail_at_the_restart_limit(hive: Core) -> None:
    restart = {"policy": "on-failure", "max_restarts": 2, "window": "10m", "initial_delay": "1s"}
    agent = await spawn(hive, max_tasks=1, restart=restart)
    health = HealthMonitor(hive.agents)
    for delay in (1.0, 2.0, None):
        await hive.submit()
        (lease,) = await hive.lease(agent.id)
        await hive.dispatcher.report(agent.id, [result(lease)])
        await recycled(hive, agent, health)
        if delay is None:
            break
        assert agent.status == "starting"
        assert (agent.status_reason or "").startswith(f"restarting in {delay:.1f}s after: recycled: ran 1")
        await restarted_after(hive, agent, delay)
    assert agent.status == "failed"
    assert agent.status_reason == (
        "restart limit reached: 2 restarts within 600s; last: recycled: ran 1 tasks (max_tasks 1)"
    )
    assert len(hive.processes.spawned) == 3 and hive.processes.running(agent.id) == []


async def test_item17_an_agent_over_max_memory_on_its_own_fails_saying_so(hive: Core) -> None:
    agent = await spawn(hive, max_memory="1MiB", restart={"policy": "always", "initial_delay": "1s"})
    health = HealthMonitor(hive.agents)
    started = hive.clock.monotonic()
    for delay in (1.0, 2.0, None):  # over max_memory at its first heartbeat, before any task
        beat = HeartbeatRequest(incarnation=agent.incarnation, rss_bytes=30 * 2**20)
        await hive.protocol.heartbeat(agent.id, beat)
        await recycled(hive, agent, health)
        if delay is None:
            break
        assert agent.status == "starting"
        await restarted_after(hive, agent, delay)
        assert agent.rss_bytes is None  # the last incarnation's RSS does not recycle the new one
        await health.sweep()
        assert not agent.recycling
    assert agent.status == "failed"
    reason = agent.status_reason or ""
    assert reason.startswith("max_memory is below the agent's own footprint"), reason
    assert "RSS 31457280 bytes over max_memory 1048576" in reason
    assert len(hive.processes.spawned) == 3 and hive.clock.monotonic() - started >= 3.0
    await hive.clock.advance(3600)
    assert len(hive.processes.spawned) == 3  # failed: nothing restarts it
