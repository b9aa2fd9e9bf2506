"""Agent routes (the PRD's) plus apply (PUT) and logs."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Query, Response

from hived.errors import Invalid
from hived.http.deps import Orch
from hived.model.schemas import Agent, AgentDetail, AgentList, AgentSpec

router = APIRouter(prefix="/agents", tags=["agents"])
MAX_LOG_CHUNK = 256 * 1024


@router.post("", response_model=Agent, status_code=201)
async def spawn_agent(spec: AgentSpec, orch: Orch) -> Agent:
    if spec.handler is None:
        raise Invalid("handler: a spawned agent needs exec or python")
    return orch.agents.view(await orch.agents.create(spec))


@router.put("/{name}")
async def apply_agent(name: str, spec: AgentSpec, orch: Orch) -> dict[str, Any]:
    if spec.name != name:
        raise Invalid(f"name: {spec.name!r} does not match the path ({name!r})")
    agent, action = await orch.agents.apply(spec)
    return {"agent": orch.agents.view(agent).model_dump(mode="json"), "action": action}


@router.get("", response_model=AgentList)
async def list_agents(
    orch: Orch,
    status: str | None = None,
    type: str | None = None,
    limit: int | None = Query(None, ge=1, le=10**6, description="default 500; at most hived's max_page_size"),
    offset: int = Query(0, ge=0),
) -> AgentList:
    limit = orch.limits.page(limit, 500)
    items = orch.list_agents(status=status, type=type)
    return AgentList(items=items[offset : offset + limit], total=len(items))


@router.get("/{ref}", response_model=AgentDetail)
async def get_agent(ref: str, orch: Orch) -> AgentDetail:
    return await orch.get_agent(ref)


@router.delete("/{ref}", response_model=Agent)
async def delete_agent(
    ref: str, orch: Orch, drain: bool = False, timeout: float = Query(60.0, ge=0, le=86400)
) -> Agent:
    return await orch.agents.delete(orch.agents.resolve(ref), drain=drain, timeout=timeout)


@router.post("/{ref}/restart", response_model=Agent)
async def restart_agent(ref: str, orch: Orch) -> Agent:
    agent = orch.agents.resolve(ref)
    await orch.agents.restart(agent)
    return orch.agents.view(agent)


@router.get(
    "/{ref}/logs",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "log text from `offset`"}},
)
async def agent_logs(
    ref: str, orch: Orch, offset: int = Query(-16384), incarnation: int | None = None
) -> Response:
    """The agent's log file from byte `offset` (negative: that many bytes from the end).
    `X-Log-Offset` tells where to continue (`-f`)."""
    path = orch.agents.log_path(orch.agents.resolve(ref), incarnation)
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
