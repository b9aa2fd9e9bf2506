"""Health sweeps: agents that stop heartbeating are declared unhealthy (spawned: killed and restarted
per policy) or lost (external), and live agent fields are flushed to the database in batches."""

from __future__ import annotations

import asyncio
import logging

from hived.agents.live import LiveAgent
from hived.agents.manager import AgentManager
from hived.clock import Clock
from hived.model.states import ROUTABLE_AGENT, AgentStatus
from hived.store.db import DatabaseUnavailable

log = logging.getLogger("hived.health")
S = AgentStatus
WATCHED = ROUTABLE_AGENT | {S.DRAINING}
MASS_SILENCE_MIN = 5  # this many agents silent at once, and
MASS_SILENCE_SHARE = 0.25  # this share of the watched ones, point at the host or hived, not at them
MASS_SILENCE_PATIENCE = 5.0  # then they get this many times longer before they are killed


class HealthMonitor:
    def __init__(
        self,
        agents: AgentManager,
        tick: float = 0.2,
        flush_every: float = 1.0,
        start_timeout: float = 30.0,
        missed_beats: int = 2,
        clock: Clock | None = None,
    ) -> None:
        self.agents = agents
        self.clock = clock or agents.clock
        self.tick = tick
        self.flush_every = flush_every
        self.start_timeout = start_timeout
        self.missed_beats = missed_beats
        self._task: asyncio.Task[None] | None = None
        self._last_tick = self.clock.monotonic()
        self._mass_warned = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="health")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        last_flush = self.clock.monotonic()
        while True:
            await self.clock.sleep(self.tick)
            try:
                await self.sweep()
                if self.clock.monotonic() - last_flush >= self.flush_every:
                    last_flush = self.clock.monotonic()
                    await self.agents.flush()
                    await self.agents.rotate_logs()
            except DatabaseUnavailable as exc:
                log.warning("health sweep: %s", exc)
            except Exception:
                log.exception("health sweep failed")

    async def sweep(self) -> None:
        mono = self.clock.monotonic()
        stall = mono - self._last_tick - self.tick
        self._last_tick = mono
        watched = [a for a in self.agents.agents.values() if a.status in WATCHED]
        if stall > 0.5:  # hived itself could not listen meanwhile: that time counts for nobody
            for agent in watched:
                agent.heartbeat_mono += stall
        silent, late = [], 0
        for agent in watched:
            silence = mono - agent.heartbeat_mono
            late += silence > agent.spec.heartbeat_interval  # at least one beat missed
            if silence > self.missed_beats * agent.spec.heartbeat_interval:
                silent.append((agent, silence))
            elif agent.status in ROUTABLE_AGENT and (reason := self._worn_out(agent)):
                self.agents.recycle(agent, reason)
        if silent and late >= MASS_SILENCE_MIN and late > MASS_SILENCE_SHARE * len(watched):
            # Many at once is the host (or hived) starved of CPU, rarely many hangs: killing them
            # all would add restarts to the overload. They get longer; the hopeless still go.
            if mono - self._mass_warned > 30:
                self._mass_warned = mono
                log.warning(
                    "%d of %d agents missed their heartbeats at once: the host or hived is overloaded; "
                    "giving them %gx longer before restarting them",
                    late,
                    len(watched),
                    MASS_SILENCE_PATIENCE,
                )
            limit = self.missed_beats * MASS_SILENCE_PATIENCE
            silent = [(a, s) for a, s in silent if s > limit * a.spec.heartbeat_interval]
        for agent, silence in silent:
            await self._silent(agent, silence)
        for agent in list(self.agents.agents.values()):
            if agent.status == S.STARTING and agent.proc is not None:
                if mono - agent.started_mono > self.start_timeout:
                    self.agents.set_status(agent, S.UNHEALTHY, "did not register in time")
                    self.agents.processes.kill(agent.proc)

    @staticmethod
    def _worn_out(agent: LiveAgent) -> str | None:
        spec = agent.spec
        if spec.max_tasks and agent.incarnation_tasks >= spec.max_tasks:
            return f"ran {agent.incarnation_tasks} tasks (max_tasks {spec.max_tasks})"
        if spec.max_memory and agent.rss_bytes and agent.rss_bytes > spec.max_memory:
            return f"RSS {agent.rss_bytes} bytes over max_memory {spec.max_memory}"
        return None

    async def _silent(self, agent: LiveAgent, silence: float) -> None:
        reason = f"no heartbeat for {silence:.1f}s"
        agent.dirty = True
        if agent.kind == "spawned" and agent.proc is not None:
            self.agents.set_status(agent, S.UNHEALTHY, reason)
            log.warning("agent %s: unhealthy (%s), killing pid %d", agent.name, reason, agent.proc.pid)
            self.agents.processes.kill(agent.proc)  # the watcher restarts it per policy
        else:
            self.agents.set_status(agent, S.LOST, reason)
            log.warning("agent %s: lost (%s)", agent.name, reason)
            await self.agents.dispatcher.agent_gone(agent.id, error=f"agent {agent.name} lost: {reason}")
