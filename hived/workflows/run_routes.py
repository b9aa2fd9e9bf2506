"""Workflow run routes: list, show, cancel, approval gates, and the shared run context."""

from __future__ import annotations

from fastapi import APIRouter, Query

from hived.http.deps import Orch
from hived.model.runs import ContextEntry, ContextPut, Decision, Run, RunList

router = APIRouter(prefix="/runs", tags=["runs"])


@router.get("", response_model=RunList)
async def list_runs(
    orch: Orch,
    status: str | None = None,
    workflow: str | None = None,
    limit: int | None = Query(None, ge=1, le=10**6, description="default 100; at most hived's max_page_size"),
    offset: int = Query(0, ge=0),
) -> RunList:
    limit = orch.limits.page(limit, 100)
    items, total = await orch.workflows.list_runs(status, workflow, limit, offset)
    return RunList(items=items, total=total)


@router.get("/{ref}", response_model=Run)
async def get_run(ref: str, orch: Orch) -> Run:
    return await orch.workflows.get_run(ref)


@router.post("/{ref}/cancel", response_model=Run)
async def cancel_run(ref: str, orch: Orch) -> Run:
    """Cancel the run: its running steps' tasks are cancelled, unfinished steps end `cancelled`."""
    return await orch.workflows.cancel(ref)


@router.post("/{ref}/steps/{step}/approve", response_model=Run)
async def approve_step(ref: str, step: str, orch: Orch, body: Decision | None = None) -> Run:
    decision = body or Decision()
    return await orch.workflows.decide(ref, step, True, decision.by or "operator", decision.comment)


@router.post("/{ref}/steps/{step}/reject", response_model=Run)
async def reject_step(ref: str, step: str, orch: Orch, body: Decision | None = None) -> Run:
    decision = body or Decision()
    return await orch.workflows.decide(ref, step, False, decision.by or "operator", decision.comment)


@router.get("/{ref}/context", response_model=list[ContextEntry])
async def get_context(ref: str, orch: Orch) -> list[ContextEntry]:
    return await orch.workflows.context(ref)


@router.get("/{ref}/context/{key}", response_model=ContextEntry)
async def get_context_key(ref: str, key: str, orch: Orch) -> ContextEntry:
    return (await orch.workflows.context(ref, key))[0]


@router.put("/{ref}/context/{key}", response_model=ContextEntry)
async def put_context_key(ref: str, key: str, body: ContextPut, orch: Orch) -> ContextEntry:
    """Compare-and-set: 409 when `expected_version` is not the stored version (0: must not exist)."""
    return await orch.workflows.put_context(ref, key, body.value, body.expected_version)
