"""The nodes as `hivectl node list|show|drain|uncordon` and `/nodes` give them. On SQLite there is
one node, this hived, with no row: it is shown all the same, so that scripts need no special case."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hived.errors import Conflict, NotFound
from hived.model.nodes import Node
from hived.store import nodes as node_store
from hived.store.db import Database


class NodeService:
    def __init__(self, db: Database, name: str, agent_nodes: Callable[[], dict[str, list[str]]]) -> None:
        self.db = db
        self.name = name  # "" on SQLite
        self.agent_nodes = agent_nodes  # node -> names of the agents placed on it
        self.started_at = datetime.now(UTC)
        self.sharing: Any = None  # hived.nodes.sharing.Sharing: its counters

    async def list(self) -> list[Node]:
        placed = self.agent_nodes()
        if not self.name:
            return [self._single(placed)]
        rows = await self.db.read(node_store.all_nodes)
        return [self._view(r, placed) for r in rows]

    async def get(self, name: str) -> Node:
        for node in await self.list():
            if node.name == name:
                return node
        raise NotFound(f"node {name!r} not found")

    async def drain(self, name: str, drained: bool) -> Node:
        """Drain a node (its agents take no new work; what they run finishes) or let work back."""
        if not self.name:
            raise Conflict(
                "nodes need a PostgreSQL database: on SQLite there is one node (cordon agents instead)"
            )
        node = await self.get(name)
        to, allowed = ("draining", ("active",)) if drained else ("active", ("draining",))
        if node.status not in allowed and node.status != to:
            raise Conflict(f"node {name} is {node.status}: only an {' or '.join(allowed)} node can be {to}")
        await self.db.write(lambda c: node_store.set_status(c, name, to, allowed))
        return await self.get(name)

    def _view(self, row: dict[str, Any], placed: dict[str, list[str]]) -> Node:
        node = Node(**row, agents=placed.get(row["name"], []), this=row["name"] == self.name)
        if node.this and self.sharing is not None:
            node.taken, node.lost_claims = self.sharing.taken, self.sharing.lost_claims
        return node

    def _single(self, placed: dict[str, list[str]]) -> Node:
        return Node(
            name=socket.gethostname(),
            status="active",
            slot=0,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self.started_at,
            agents=sorted(n for names in placed.values() for n in names),
            this=True,
        )
