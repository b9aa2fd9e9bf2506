"""This hived as a node of a cluster on one PostgreSQL: the parts of hived.nodes, wired into the
daemon's dispatcher, agent manager and services (hived.orchestrator calls `Cluster` at start and
stop; on SQLite there is no cluster)."""

from __future__ import annotations

from hived.agents.manager import AgentManager
from hived.events import EventBus
from hived.nodes.membership import Membership
from hived.nodes.placement import Placement
from hived.nodes.sharing import Sharing
from hived.store import nodes as node_store
from hived.store.db import Database
from hived.store.wire import Wire
from hived.tasks.dispatcher import Dispatcher


class Cluster:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        agents: AgentManager,
        events: EventBus,
        db_url: str,
        node: str,
        timeout: float,
    ) -> None:
        self.db = db
        self.node = node
        self.wire = Wire(db_url, node)
        self.sharing = Sharing(db, dispatcher, self.wire, events)
        self.membership = Membership(db, dispatcher, node, timeout)
        self.placement = Placement(db, agents, node)
        dispatcher.shared = self.sharing
        agents.node = node
        self.membership.lost_handlers.append(self.sharing.take_over)
        self.membership.fenced_ended = self.sharing.end_fenced
        self.membership.beat_handlers.append(self.placement.refresh)

    async def join(self) -> None:
        """Before the agents and tasks are loaded: this node's row, slot and numbers."""
        await self.membership.join()

    async def here(self) -> dict[str, str | None]:
        """Every agent's node, read once at start (whose in-flight attempts are this node's)."""
        return await self.db.read(node_store.placements)

    async def start(self) -> None:
        await self.placement.refresh()
        self.wire.start()
        self.sharing.start()
        self.membership.start()

    async def stop(self) -> None:
        await self.membership.leave()
        await self.sharing.stop()
        await self.wire.stop()
