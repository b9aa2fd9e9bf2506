"""Supervision in this process: the agent manager on the real store, a FakeClock and in-memory
processes (hived.agents.testing). Crashes restart per policy after a backoff that only the clock
ends; a crash loop ends in `failed`; stop, drain, silence and a hived restart (adoption)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import pytest

from hived.agents.heartbeats import HealthMonitor
from hived.agents.live import LiveAgent
from hived.agents.manager import AgentManager
from hived.model.schemas import AgentSpec, AttemptResult
from tests.unit.inprocess import Core, register, spawn


async def crash(hive: Core, agent: LiveAgent, code: int = 1) -> None:
    """The agent's process exits with `code`; returns once hived has dealt with it."""
    hive.processes.current(agent.id).exit(code)
    assert agent.watcher is not None
    await agent.watcher


@pytest.mark.parametrize(
    ("policy", "code", "status"),
    [
        ("always", 0, "starting"),
        ("always", 1, "starting"),
        ("always", -9, "starting"),
        ("on-failure", 0, "stopped"),
        ("on-failure", 1, "starting"),
        ("on-failure", -9, "starting"),
        ("never", 0, "stopped"),
        ("never", 1, "failed"),
    ],
)
async def test_an_exit_is_followed_per_restart_policy(
    hive: Core, policy: str, code: int, status: str
) -> None:
    agent = await spawn(hive, restart={"policy": policy, "initial_delay": "2s"})
    await crash(hive, agent, code)
    assert agent.status == status
    assert hive.processes.running(agent.id) == []
    if status == "starting":
        assert agent.pending_restart is not None and agent.status_reason is not None
        assert agent.status_reason.startswith("restarting in 2.0s")
        await hive.clock.advance(2)
        await agent.pending_restart
        assert (agent.incarnation, agent.restarts) == (2, 1)
        assert hive.processes.current(agent.id).incarnation == 2
    else:
        assert agent.pending_restart is None and len(hive.processes.spawned) == 1


async def test_restarts_back_off_on_the_clock_until_the_crash_loop_fails(hive: Core) -> None:
    restart = {
        "policy": "always",
        "max_restarts": 3,
        "window": "10m",
        "initial_delay": "1s",
        "max_delay": "3s",
    }
    agent = await spawn(hive, restart=restart)
    for delay in (1.0, 2.0, 3.0):  # doubling, capped at max_delay
        await crash(hive, agent)
        assert agent.pending_restart is not None
        await hive.clock.advance(delay - 0.01)
        assert len(hive.processes.spawned) == agent.incarnation  # not yet
        await hive.clock.advance(0.01)
        await agent.pending_restart
        assert hive.processes.current(agent.id).incarnation == agent.incarnation
        await register(hive, agent)
    await crash(hive, agent)
    assert agent.status == "failed"
    assert "restart limit reached: 3 restarts within 600s" in (agent.status_reason or "")
    await hive.clock.advance(3600)
    assert len(hive.processes.spawned) == 4 and hive.processes.running(agent.id) == []
    incarnations = await hive.agents.incarnations(agent)
    assert [(i.number, i.exit_code) for i in incarnations] == [(1, 1), (2, 1), (3, 1), (4, 1)]


async def test_a_stop_terms_the_process_and_nothing_restarts_it(hive: Core) -> None:
    agent = await spawn(hive, restart={"policy": "always"})
    proc = hive.processes.current(agent.id)
    await hive.agents.stop(agent)
    assert proc.signals == [signal.SIGTERM]
    assert (agent.status, agent.status_reason, agent.pid) == ("stopped", "stopped by operator", None)
    await hive.clock.advance(3600)
    assert hive.processes.running(agent.id) == [] and agent.pending_restart is None


async def test_a_stop_kills_what_ignores_sigterm_after_the_grace(hive: Core) -> None:
    agent = await spawn(hive)
    proc = hive.processes.current(agent.id)
    proc.ignores_term = True
    stopping = asyncio.ensure_future(hive.agents.stop(agent))
    await hive.clock.until_sleeping()
    await hive.clock.advance(hive.agents.stop_grace - 0.1)
    assert not stopping.done() and proc.returncode is None
    await hive.clock.advance(0.1)
    await stopping
    assert proc.signals == [signal.SIGTERM, signal.SIGKILL] and agent.status == "stopped"


async def test_a_drain_waits_for_the_running_task_then_stops(hive: Core) -> None:
    agent = await spawn(hive)
    task_id = await hive.submit()
    (lease,) = await hive.lease(agent.id)
    stopping = asyncio.ensure_future(hive.agents.stop(agent, drain=True, timeout=60))
    await hive.clock.until_sleeping()
    assert agent.status == "draining" and hive.processes.running(agent.id)
    await hive.clock.advance(30)
    assert not stopping.done()
    done = AttemptResult(task_id=task_id, attempt=1, lease=lease.lease, ok=True, result={})
    await hive.dispatcher.report(agent.id, [done])  # the drain wakes on the release, not on a poll
    await asyncio.wait_for(stopping, 5)
    assert agent.status == "stopped"
    assert (await hive.task(task_id))["status"] == "completed"


async def test_a_drain_gives_up_at_its_timeout_and_the_task_is_retried(hive: Core) -> None:
    agent = await spawn(hive)
    task_id = await hive.submit(retry={"initial": "1s", "jitter": 0})
    await hive.lease(agent.id)
    drained = asyncio.ensure_future(hive.agents.drain(agent, timeout=60))
    await hive.clock.until_sleeping()
    await hive.clock.advance(60)
    assert await asyncio.wait_for(drained, 5) is False
    await hive.agents.stop(agent)
    assert (await hive.task(task_id))["status"] == "retrying"


async def test_a_silent_agent_is_killed_and_restarted(hive: Core) -> None:
    agent = await spawn(
        hive, heartbeat_interval="5s", restart={"policy": "on-failure", "initial_delay": "1s"}
    )
    health = HealthMonitor(hive.agents, tick=2.0)  # swept every 2 s below, as its loop would
    proc = hive.processes.current(agent.id)
    for _ in range(5):  # quiet for 10 s: two beats missed, not more
        await hive.clock.advance(2)
        await health.sweep()
    assert agent.status == "active"
    await hive.clock.advance(0.5)
    await health.sweep()
    assert proc.signals == [signal.SIGKILL]
    assert agent.watcher is not None
    await agent.watcher
    assert agent.status == "starting" and "no heartbeat for 10.5s" in (agent.status_reason or "")
    await hive.clock.advance(1)
    assert agent.pending_restart is not None
    await agent.pending_restart
    assert hive.processes.current(agent.id).incarnation == 2


async def test_a_new_manager_adopts_the_agents_still_running(hive: Core) -> None:
    """hived restarts: its agents' processes live on and are adopted, not started again."""
    agent = await spawn(hive)
    gone = await hive.agents.create(AgentSpec.model_validate({"name": "gone", "handler": {"exec": ["true"]}}))
    hive.processes.current(gone.id).exit(1)  # dies while no hived watches (its watcher is cancelled)
    for live in (agent, gone):
        assert live.watcher is not None
        live.watcher.cancel()
    await hive.agents.flush()
    second = AgentManager(
        hive.db, hive.dispatcher, hive.state_dir, None, clock=hive.clock, processes=hive.processes
    )
    assert await second.load() == [agent.id]
    adopted, restarted = second.agents[agent.id], second.agents[gone.id]
    assert adopted.pid == hive.processes.current(agent.id).pid and adopted.status == "starting"
    assert restarted.incarnation == 2 and hive.processes.current(gone.id).incarnation == 2
    hive.processes.current(agent.id).exit(0)  # the adopted process is watched; its exit status unknown
    assert adopted.watcher is not None
    await adopted.watcher
    assert adopted.status == "starting" and "exit status unknown" in (adopted.status_reason or "")
    assert adopted.pending_restart is not None
    adopted.pending_restart.cancel()
    for live in (adopted, restarted):
        if live.watcher:
            live.watcher.cancel()


async def test_a_restart_while_a_crash_is_being_recorded_waits_for_it(hive: Core) -> None:
    """The agent dies, and an operator restart lands while hived is still writing that end: the
    restart waits for the crash to be dealt with, so one new incarnation runs, supervised, and the
    crash does not schedule a second one behind the operator's back."""
    agent = await spawn(hive, restart={"policy": "always", "initial_delay": "1s"})
    hive.processes.current(agent.id).exit(1)
    for _ in range(100):  # until the watcher has seen the exit and is writing its end
        if agent.proc is None:
            break
        await asyncio.sleep(0)
    assert agent.proc is None and agent.watcher is not None and not agent.watcher.done()
    await hive.agents.restart(agent)
    await hive.clock.advance(60)  # any restart the crash might have scheduled would start now
    assert [p.incarnation for p in hive.processes.running(agent.id)] == [agent.incarnation]
    assert agent.pending_restart is None or agent.pending_restart.done()
    assert agent.proc is not None and agent.proc.pid == hive.processes.current(agent.id).pid


async def test_while_a_crash_is_dealt_with_the_agent_keeps_its_pid_until_its_status_changes(
    hive: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the exit and the restart hived sweeps what the handlers left and writes the end (tens
    of ms under load): meanwhile the view must not show an `active` agent without its process, which
    a client waiting for a new pid would take for the restart (a CI flake of test_daemon.py)."""
    agent = await spawn(hive, restart={"policy": "always", "initial_delay": "1s"})
    await register(hive, agent)
    first = hive.processes.current(agent.id)
    seen: list[tuple[str, int | None, int]] = []

    def look() -> None:
        view = hive.agents.view(agent)
        seen.append((view.status, view.pid, view.restarts))

    for owner, name in ((hive.processes, "sweep"), (hive.dispatcher, "agent_gone")):
        monkeypatch.setattr(owner, name, spy(getattr(owner, name), look))
    first.exit(-signal.SIGKILL)
    assert agent.watcher is not None
    await agent.watcher
    look()
    await hive.clock.advance(1)
    assert agent.pending_restart is not None
    await agent.pending_restart
    look()
    second = hive.processes.current(agent.id).pid
    assert seen == [
        ("active", first.pid, 0),
        ("active", first.pid, 0),
        ("starting", None, 0),
        ("starting", second, 1),
    ]
    assert agent.proc is not None and agent.proc.pid == second


def spy(method: Any, look: Callable[[], None]) -> Any:
    """`method`, which calls `look` first."""

    async def spied(*args: Any, **kwargs: Any) -> Any:
        look()
        return await method(*args, **kwargs)

    return spied
