"""Agent routes (the PRD's) plus apply (PUT) and logs."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Query, Response

from hived.http.deps import Agents, Bounds
from hived.model.schemas import MAX_OFFSET, Agent, AgentDetail, AgentList, AgentSpec

router = APIRouter(prefix="/agents", tags=["agents"])
MAX_LOG_CHUNK = 256 * 1024


@router.post("", response_model=Agent, status_code=201)
async def spawn_agent(spec: AgentSpec, agents: Agents) -> Agent:
    return await agents.spawn(spec)


@router.put("/{name}")
async def apply_agent(name: str, spec: AgentSpec, agents: Agents) -> dict[str, Any]:
    agent, action = await agents.apply(name, spec)
    return {"agent": agent.model_dump(mode="json"), "action": action}


@router.get("", response_model=AgentList)
async def list_agents(
    agents: Agents,
    bounds: Bounds,
    status: str | None = None,
    type: str | None = None,
    limit: int | None = Query(None, ge=1, le=10**6, description="default 500; at most hived's max_page_size"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> AgentList:
    limit = bounds.page(limit, 500)
    items = agents.list(status=status, type=type)
    return AgentList(items=items[offset : offset + limit], total=len(items))


@router.get("/{ref}", response_model=AgentDetail)
async def get_agent(ref: str, agents: Agents) -> AgentDetail:
    return await agents.get(ref)


@router.delete("/{ref}", response_model=Agent)
async def delete_agent(
    ref: str, agents: Agents, drain: bool = False, timeout: float = Query(60.0, ge=0, le=86400)
) -> Agent:
    return await agents.delete(ref, drain=drain, timeout=timeout)


@router.post("/{ref}/restart", response_model=Agent)
async def restart_agent(ref: str, agents: Agents) -> Agent:
    return await agents.restart(ref)


@router.post("/{ref}/cordon", response_model=Agent)
async def cordon_agent(ref: str, agents: Agents) -> Agent:
    """No new work for the agent (stored, shown as `cordoned`); the tasks it runs finish."""
    return await agents.cordon(ref, True)


@router.post("/{ref}/uncordon", response_model=Agent)
async def uncordon_agent(ref: str, agents: Agents) -> Agent:
    return await agents.cordon(ref, False)


@router.get(
    "/{ref}/logs",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "log text from `offset`"}},
)
async def agent_logs(
    ref: str,
    agents: Agents,
    offset: int = Query(-16384, ge=-MAX_OFFSET, le=MAX_OFFSET),
    incarnation: int | None = Query(None, ge=1, le=MAX_OFFSET),
) -> Response:
    """The agent's log file from byte `offset` (negative: that many bytes from the end).
    `X-Log-Offset` tells where to continue (`-f`)."""
    path = agents.log_path(ref, incarnation)
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return Response("", media_type="text/plain", headers={"X-Log-Offset": "0"})
    start = max(0, size + offset) if offset < 0 else min(offset, size)
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(MAX_LOG_CHUNK)
    return Response(
        data.decode("utf-8", "replace"),
        media_type="text/plain",
        headers={"X-Log-Offset": str(start + len(data))},
    )
