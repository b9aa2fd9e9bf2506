"""Shared dependencies of the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hived.orchestrator import AgentOrchestrator


async def get_orchestrator(request: Request) -> AgentOrchestrator:
    return request.app.state.orchestrator  # type: ignore[no-any-return]


Orch = Annotated[AgentOrchestrator, Depends(get_orchestrator)]
