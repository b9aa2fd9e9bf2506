"""The agent side of the API: register, heartbeat, and the long-poll that carries results and leases."""

from __future__ import annotations

import logging

from hived.agents.live import LiveAgent
from hived.agents.manager import AgentManager
from hived.agents.workspaces import attempt_settings
from hived.clock import Clock
from hived.errors import Conflict, Invalid, NotFound
from hived.model.schemas import (
    AttemptResult,
    HeartbeatRequest,
    HeartbeatResponse,
    RegisterRequest,
    RegisterResponse,
    ResultAck,
    WorkRequest,
    WorkResponse,
)
from hived.model.states import ROUTABLE_AGENT, AgentStatus
from hived.model.workspaces import AFFINITY_CAPABILITY
from hived.store import agents as agent_store
from hived.tasks.attempt_files import AttemptFiles
from hived.usage.service import UsageService

log = logging.getLogger("hived.protocol")
S = AgentStatus


class AgentProtocol:
    def __init__(self, agents: AgentManager, clock: Clock | None = None) -> None:
        self.agents = agents
        self.clock = clock or agents.clock
        self.dispatcher = agents.dispatcher
        self.usage: UsageService | None = None  # set by the composition root
        self.attempt_files: AttemptFiles | None = None  # workspaces' reports (set there too)
        self.fence_after: float | None = None  # a node of a cluster (hived.nodes): sent to agents

    async def register(self, req: RegisterRequest) -> RegisterResponse:
        if req.agent_id is not None:
            agent = self.agents.agents.get(req.agent_id)
            if agent is None:
                raise NotFound(f"agent {req.agent_id} not found")
            if agent.kind == "spawned" and req.incarnation != agent.incarnation:
                raise Conflict(
                    f"agent {agent.name}: incarnation {req.incarnation} is not the current one "
                    f"({agent.incarnation})"
                )
        elif req.spec is not None:
            agent = await self._register_external(req)
        else:
            raise Invalid("register needs agent_id (spawned agent) or spec (external agent)")
        if agent.kind == "external":
            agent.pid = req.pid
        self.agents.set_status(agent, S.ACTIVE, None)
        self._beat(agent)
        self.attach(agent)
        log.info("agent %s: registered (incarnation %d, pid %d)", agent.name, agent.incarnation, req.pid)
        return RegisterResponse(
            agent=self.agents.view(agent),
            incarnation=agent.incarnation,
            heartbeat_interval=agent.spec.heartbeat_interval,
            handler=agent.spec.handler,
            env=agent.spec.env,
            secret_env=agent.spec.secret_env,
            workdir=self.agents.workdir(agent),
            **attempt_settings(agent, self.agents.state_dir, self.dispatcher.limits),
            fence_after=self.fence_after,
        )

    async def _register_external(self, req: RegisterRequest) -> LiveAgent:
        assert req.spec is not None
        spec = req.spec
        if spec.name not in self.agents.by_name:
            agent = await self.agents.create(spec, kind="external")
        else:
            agent = self.agents.agents[self.agents.by_name[spec.name]]
            if agent.kind != "external":
                raise Conflict(f"agent name {spec.name!r} belongs to an agent that hived spawns")
            if agent.status in ROUTABLE_AGENT or agent.status == S.DRAINING:
                raise Conflict(f"agent {spec.name!r} is already connected (pid {agent.pid})")
            await self.dispatcher.agent_gone(agent.id, error=f"agent {agent.name} re-registered")
            agent.spec = spec
        agent.incarnation += 1
        number, stamp = agent.incarnation, self.clock.now()
        await self.agents.db.write(
            lambda c: agent_store.start_incarnation(c, agent.id, number, req.pid, req.hostname, stamp)
        )
        return agent

    def check_incarnation(self, agent_id: str, incarnation: int) -> None:
        """NotFound or Conflict unless this is the agent's current incarnation (artifact uploads)."""
        self._current(agent_id, incarnation)

    def _current(self, agent_id: str, incarnation: int) -> LiveAgent:
        agent = self.agents.agents.get(agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id} not found")
        if incarnation != agent.incarnation:
            raise Conflict(
                f"agent {agent.name}: incarnation {incarnation} was replaced by {agent.incarnation}"
            )
        if agent.status in (S.STOPPED, S.FAILED) or agent.stopping:
            raise Conflict(f"agent {agent.name} is {agent.status}")
        if agent.status in (S.STARTING, S.LOST) or (agent.status == S.UNHEALTHY and agent.kind == "external"):
            # Its process outlived a hived restart (adopted) or came back from a network split.
            self.agents.set_status(agent, S.ACTIVE, "reconnected")
            self.attach(agent)
            log.info("agent %s: reconnected (incarnation %d)", agent.name, agent.incarnation)
        return agent

    def attach(self, agent: LiveAgent) -> None:
        policy = agent.spec.circuit_breaker
        self.dispatcher.attach(
            agent.id,
            [*agent.spec.capabilities, f"{AFFINITY_CAPABILITY}{agent.id}"],  # `affinity:` pins to it
            agent.spec.max_concurrency,
            breaker=(policy.threshold, policy.cooldown),
            budget=None
            if agent.spec.max_tasks is None
            else max(0, agent.spec.max_tasks - agent.incarnation_tasks),
        )

    def _beat(self, agent: LiveAgent) -> None:
        agent.last_heartbeat = self.clock.now()
        agent.heartbeat_mono = self.clock.monotonic()
        agent.dirty = True

    async def heartbeat(self, agent_id: str, req: HeartbeatRequest) -> HeartbeatResponse:
        agent = self._current(agent_id, req.incarnation)
        self._beat(agent)
        agent.rss_bytes, agent.cpu_percent = req.rss_bytes, req.cpu_percent
        if req.usage and self.usage is not None:  # a budget crossed now stops attempts in this reply
            await self.usage.record(agent.id, req.usage)
        await self.dispatcher.reconcile(agent.id, set(req.running), grace=2 * agent.spec.heartbeat_interval)
        if agent.status == S.UNHEALTHY:
            self.agents.set_status(agent, S.ACTIVE, "heartbeats resumed")
        channel = self.dispatcher.channels.get(agent.id)
        cancels = sorted(channel.cancels) if channel else []
        if channel:
            channel.cancels.clear()
        return HeartbeatResponse(
            status=self.agents.shown_status(agent),
            cancel=cancels,
            heartbeat_interval=agent.spec.heartbeat_interval,
        )

    async def work(self, agent_id: str, req: WorkRequest) -> WorkResponse:
        agent = self._current(agent_id, req.incarnation)
        self._beat(agent)
        acks = await self.report(agent.id, req.results) if req.results else []
        slots = req.slots if agent.status in ROUTABLE_AGENT else 0
        leases, cancels = await self.dispatcher.take(agent.id, slots, req.wait)
        inputs: list[dict[str, str]] = []  # lines typed by `hivectl task send`
        if (channel := self.dispatcher.channels.get(agent.id)) is not None:  # gone if the agent left
            inputs, channel.inputs = channel.inputs, []
        status = self.agents.shown_status(agent)
        return WorkResponse(tasks=leases, acks=acks, cancel=cancels, status=status, input=inputs)

    async def report(self, agent_id: str, results: list[AttemptResult]) -> list[ResultAck]:
        """Results (also single ones: `POST /tasks/{id}/complete|fail`), fenced by attempt and lease;
        then the usage they carry (recorded even for a refused result: it was spent)."""
        if self.attempt_files is not None and any(r.workspace for r in results):
            await self.attempt_files.record(agent_id, results)  # fenced; before the results end them
        if self.usage is None:
            return await self.dispatcher.report(agent_id, results)
        new = await self.usage.record_results(agent_id, results)
        acks = await self.dispatcher.report(agent_id, results)
        await self.usage.check(new)  # after the ends: an attempt that just ended is not stopped
        return acks
