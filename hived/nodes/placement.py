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
        self._seen: dict[str, tuple[dict[str, Any], Agent | None]] = {}  # id -> (row, view) last read

    async def refresh(self) -> None:
        """Read the agents and nodes; start the agents newly placed here (applied on another node).
        A row unchanged since the last read (and the nodes unchanged) is not parsed again."""
        rows, nodes = await self.db.read(lambda c: (agent_store.all_agents(c), node_store.all_nodes(c)))
        known = {n["name"]: n["status"] for n in nodes}
        if known != self.nodes:
            self.nodes, self._seen = known, {}
        others: dict[str, Agent] = {}
        seen: dict[str, tuple[dict[str, Any], Agent | None]] = {}
        for row in rows:
            last = self._seen.get(row["id"])
            if (
                last is not None
                and last[0] == row
                and (last[1] is not None or row["id"] in self.manager.agents)
            ):
                seen[row["id"]] = last
                if last[1] is not None:
                    others[last[1].name] = last[1]
                continue
            view = await self._look_at(row)
            seen[row["id"]] = (row, view)
            if view is not None:
                others[view.name] = view
        self.others, self._seen = others, seen

    async def _look_at(self, row: dict[str, Any]) -> Agent | None:
        """An agent's row: started or reconfigured here if it is placed here, else its view."""
        node = row.get("node")
        if node == self.node:
            mine = self.manager.agents.get(row["id"])
            if mine is None:
                await self._take(row)
            elif (spec := LiveAgent.from_row(row).spec) != mine.spec:  # applied on another node
                await self.manager.apply(spec)
            return None
        agent = LiveAgent.from_row(row)
        view = agent.view(AgentStatus(row["status"]), "closed", [])
        if node not in self.nodes:
            view.status, view.status_reason = AgentStatus.UNSCHEDULED, f"node {node!r} is not known"
        elif self.nodes[node] == "lost":
            view.status_reason = f"node {node} is lost; its last status was {row['status']}"
        return view

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
