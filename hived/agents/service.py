"""The agent service: what the agent routes (and the PRD's facade) call, on top of the supervisor
(hived.agents.manager). Views of agents, spawn and apply, restart and removal, log files, and who holds
what (for agent tokens, which reach only their own attempts and runs)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from hived.agents.manager import AgentManager, LiveAgent
from hived.agents.workspaces import check_workspace
from hived.errors import Invalid
from hived.events import AgentStatusChanged
from hived.model.schemas import Agent, AgentDetail, AgentSpec
from hived.model.states import ROUTABLE_AGENT
from hived.tasks.controls import QueueControls
from hived.tasks.dispatcher import Dispatcher


class OtherNodes(Protocol):
    """The agents other nodes supervise (hived.nodes.placement), when this hived is a node."""

    node: str
    others: dict[str, Agent]

    def get(self, name: str) -> Agent | None: ...

    async def apply_elsewhere(self, spec: AgentSpec) -> tuple[Agent, str]: ...


class AgentService:
    def __init__(self, agents: AgentManager, dispatcher: Dispatcher, controls: QueueControls) -> None:
        self.agents = agents
        self.dispatcher = dispatcher
        self.controls = controls
        self.usage_view: Callable[[AgentDetail], Awaitable[AgentDetail]] | None = None  # hived.usage
        self.placement: OtherNodes | None = None  # other nodes' agents (hived.nodes)

    def view(self, agent: LiveAgent) -> Agent:
        shown = self.agents.view(agent)
        shown.cordoned = agent.id in self.dispatcher.holding.cordoned
        return shown

    def list(self, status: str | None = None, type: str | None = None) -> list[Agent]:
        views = [self.view(a) for a in self.agents.agents.values()]
        if self.placement is not None:
            views = sorted(views + list(self.placement.others.values()), key=lambda a: a.name)
        else:
            views.sort(key=lambda a: a.name)
        return [v for v in views if (not status or v.status == status) and (not type or v.type == type)]

    async def get(self, ref: str) -> AgentDetail:
        if (
            self.placement is not None
            and (other := self.placement.get(ref))
            and ref not in self.agents.by_name
        ):
            return AgentDetail(**other.model_dump(), incarnations=[])
        agent = self.agents.resolve(ref)
        incarnations = await self.agents.incarnations(agent)
        detail = AgentDetail(**self.view(agent).model_dump(), incarnations=incarnations)
        return await self.usage_view(detail) if self.usage_view is not None else detail

    async def cordon(self, ref: str, cordoned: bool) -> Agent:
        """Cordon (no new work; what it runs finishes) or uncordon the agent; stored."""
        agent = self.agents.resolve(ref)
        await self.controls.cordon(agent.id, cordoned)
        return self.view(agent)

    def cordoned_names(self) -> list[str]:
        return sorted(a.name for a in self.agents.agents.values() if a.id in self.dispatcher.holding.cordoned)

    async def spawn(self, spec: AgentSpec) -> Agent:
        if spec.handler is None:
            raise Invalid("handler: a spawned agent needs exec or python")
        await check_workspace(spec)
        return self.agents.view(await self.agents.create(spec))

    async def spawn_and_wait(self, spec: AgentSpec, wait: float) -> LiveAgent:
        """Spawn an agent and wait (up to `wait` s) until it takes work (the PRD's register_agent)."""
        agent = await self.agents.create(spec)
        events = self.agents.events
        await events.wait_until(AgentStatusChanged, lambda _: agent.status in ROUTABLE_AGENT, wait)
        return agent

    async def apply(self, name: str, spec: AgentSpec) -> tuple[Agent, str]:
        if spec.name != name:
            raise Invalid(f"name: {spec.name!r} does not match the path ({name!r})")
        if self.placement is not None and spec.node not in (None, self.placement.node):
            return await self.placement.apply_elsewhere(spec)
        await check_workspace(spec)
        agent, action = await self.agents.apply(spec)
        return self.agents.view(agent), action

    async def delete(self, ref: str, drain: bool, timeout: float) -> Agent:
        return await self.agents.delete(self.agents.resolve(ref), drain=drain, timeout=timeout)

    async def restart(self, ref: str) -> Agent:
        agent = self.agents.resolve(ref)
        await self.agents.restart(agent)
        return self.agents.view(agent)

    def log_path(self, ref: str, incarnation: int | None) -> Path:
        return self.agents.log_path(self.agents.resolve(ref), incarnation)

    def id_of(self, ref: str) -> str:
        return self.agents.resolve(ref).id

    def name_of(self, agent_id: str) -> str | None:
        return self.agents.name_of(agent_id)

    def holder_name(self, task_id: str) -> str | None:
        """The name of the agent holding the task's current attempt (agent tokens' fencing)."""
        entry = self.dispatcher.in_flight.get(task_id)
        return self.agents.name_of(entry.agent_id) if entry else None

    def runs_held_by(self, agent_name: str) -> set[str]:
        """Ids of the runs whose tasks this agent holds now (agent tokens reach only their context)."""
        agent_id = self.agents.by_name.get(agent_name)
        return {
            entry.task.run_id
            for entry in self.dispatcher.in_flight.values()
            if entry.task.run_id and entry.agent_id == agent_id
        }
