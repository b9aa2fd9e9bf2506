"""Where agents run: each node supervises the agents placed on it (`node: NAME`, default the node
that received the apply). An apply sent to any node is stored; the node it names starts the agent
on its next heartbeat. Every node shows every agent: its own live, the others' as their rows say,
and an agent placed on a node that does not exist as `unscheduled`, with the reason."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from hived.agents.live import LiveAgent
from hived.agents.manager import AgentManager
from hived.errors import Conflict
from hived.model.schemas import Agent, AgentSpec
from hived.model.states import AgentStatus
from hived.store import agents as agent_store
from hived.store import nodes as node_store
from hived.store.db import Database

log = logging.getLogger("hived.nodes")


class Placement:
    def __init__(self, db: Database, manager: AgentManager, node: str) -> None:
        self.db = db
        self.manager = manager
        self.node = node
        self.others: dict[str, Agent] = {}  # other nodes' agents, by name, as their rows say
        self.nodes: dict[str, str] = {}  # node name -> status

    async def refresh(self) -> None:
        """Read the agents and nodes; start the agents newly placed here (applied on another node)."""
        rows, nodes = await self.db.read(lambda c: (agent_store.all_agents(c), node_store.all_nodes(c)))
        self.nodes = {n["name"]: n["status"] for n in nodes}
        others: dict[str, Agent] = {}
        for row in rows:
            node = row.get("node")
            if node == self.node:
                mine = self.manager.agents.get(row["id"])
                if mine is None:
                    await self._take(row)
                elif (spec := LiveAgent.from_row(row).spec) != mine.spec:  # applied on another node
                    await self.manager.apply(spec)
                continue
            agent = LiveAgent.from_row(row)
            view = agent.view(AgentStatus(row["status"]), "closed", [])
            if node not in self.nodes:
                view.status, view.status_reason = AgentStatus.UNSCHEDULED, f"node {node!r} is not known"
            elif self.nodes[node] == "lost":
                view.status_reason = f"node {node} is lost; its last status was {row['status']}"
            others[agent.name] = view
        self.others = others

    async def _take(self, row: dict[str, Any]) -> None:
        agent = LiveAgent.from_row(row)
        self.manager._add(agent)
        log.info("agent %s: placed on this node (%s); starting it", agent.name, self.node)
        if agent.kind == "spawned" and agent.status not in (AgentStatus.STOPPED, AgentStatus.FAILED):
            await self.manager.start(agent)

    async def apply_elsewhere(self, spec: AgentSpec) -> tuple[Agent, str]:
        """Store an agent placed on another node; that node starts it."""
        assert spec.node is not None
        if spec.name in self.manager.by_name:
            raise Conflict(
                f"agent {spec.name!r} runs on node {self.node}: delete it before placing it on {spec.node}"
            )
        config = spec.model_dump(mode="json", exclude={"name", "replicas"})
        existing = self.others.get(spec.name)
        if existing is not None and existing.node != spec.node:
            raise Conflict(f"agent {spec.name!r} is placed on node {existing.node}: delete it to move it")
        if existing is not None and existing.config == config:
            return existing, "unchanged"
        status = AgentStatus.STARTING if spec.node in self.nodes else AgentStatus.UNSCHEDULED
        if existing is None:
            agent = LiveAgent(
                id=str(uuid.uuid4()),
                name=spec.name,
                type=spec.type or spec.name,
                kind="spawned",
                spec=spec,
                created_at=self.manager.clock.now(),
                status=status,
                node=spec.node,
            )
            row = agent.row()
            await self.db.write(lambda c: agent_store.insert_agent(c, row))
        else:
            values = {"config": config, "capabilities": spec.capabilities, "node": spec.node}
            values["max_concurrency"] = spec.max_concurrency
            await self.db.write(lambda c: agent_store.update_agent(c, existing.id, **values))
        await self.refresh()
        return self.others[spec.name], "created" if existing is None else "configured"

    def get(self, name: str) -> Agent | None:
        return self.others.get(name) or next((a for a in self.others.values() if a.id.startswith(name)), None)
