"""Node routes: the nodes of the cluster (`GET /nodes`, `GET /nodes/{name}`), drained or let back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from hived.model.nodes import Node, NodeList
from hived.nodes.service import NodeService

router = APIRouter(prefix="/nodes", tags=["nodes"])


async def _nodes(request: Request) -> NodeService:
    return request.app.state.orchestrator.nodes  # type: ignore[no-any-return]


Nodes = Annotated[NodeService, Depends(_nodes)]


@router.get("", response_model=NodeList)
async def list_nodes(nodes: Nodes) -> NodeList:
    """Every node of the cluster (on SQLite: this hived alone), with the agents placed on it."""
    items = await nodes.list()
    return NodeList(items=items, total=len(items))


@router.get("/{name}", response_model=Node)
async def get_node(name: str, nodes: Nodes) -> Node:
    return await nodes.get(name)


@router.post("/{name}/drain", response_model=Node)
async def drain_node(name: str, nodes: Nodes) -> Node:
    """Its agents take no new work; what they run finishes. Queued work goes to the other nodes."""
    return await nodes.drain(name, True)


@router.post("/{name}/uncordon", response_model=Node)
async def uncordon_node(name: str, nodes: Nodes) -> Node:
    """Its agents take work again."""
    return await nodes.drain(name, False)
