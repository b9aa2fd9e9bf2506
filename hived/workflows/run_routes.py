"""Workflow run routes: list, show, cancel, approval gates, and the shared run context."""

from __future__ import annotations

from fastapi import APIRouter, Query

from hived.errors import Invalid
from hived.http.deps import Bounds, Workflows
from hived.model.runs import ContextEntry, ContextPut, Decision, RerunRequest, Run, RunList
from hived.model.schemas import MAX_OFFSET, MAX_WAIT
from hived.model.waits import Signal

router = APIRouter(prefix="/runs", tags=["runs"])


@router.get("", response_model=RunList)
async def list_runs(
    workflows: Workflows,
    bounds: Bounds,
    status: str | None = None,
    workflow: str | None = None,
    limit: int | None = Query(None, ge=1, le=10**6, description="default 100; at most hived's max_page_size"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> RunList:
    limit = bounds.page(limit, 100)
    items, total = await workflows.list_runs(status, workflow, limit, offset)
    return RunList(items=items, total=total)


@router.get("/{ref}", response_model=Run)
async def get_run(
    ref: str,
    workflows: Workflows,
    wait: float = Query(
        0, ge=0, le=MAX_WAIT, description="answer once the run has ended, or after this many s"
    ),
    since: int | None = Query(
        None,
        ge=0,
        le=2**62,
        description="with wait: answer as soon as the run's revision is not this one (a change of the "
        "run or of one of its steps), not only when it ends",
    ),
) -> Run:
    return await workflows.get_run(ref, wait, since)


@router.post("/{ref}/cancel", response_model=Run)
async def cancel_run(ref: str, workflows: Workflows) -> Run:
    """Cancel the run: its running steps' tasks are cancelled, unfinished steps end `cancelled`."""
    return await workflows.cancel(ref)


@router.post("/{ref}/rerun", response_model=Run, status_code=201)
async def rerun(ref: str, workflows: Workflows, body: RerunRequest | None = None) -> Run:
    """A new run (`rerun_of`) keeping the results of the steps that succeeded: `from_step` and what
    follows it run again (none given: the steps that did not succeed and what follows them)."""
    return await workflows.rerun(ref, (body or RerunRequest()).from_step)


@router.post("/{ref}/steps/{step}/approve", response_model=Run)
async def approve_step(ref: str, step: str, workflows: Workflows, body: Decision | None = None) -> Run:
    decision = body or Decision()
    if decision.rework is not None:
        raise Invalid("rework: only a rejection sends steps back")
    return await workflows.decide(ref, step, True, decision.by or "operator", decision.comment)


@router.post("/{ref}/steps/{step}/reject", response_model=Run)
async def reject_step(ref: str, step: str, workflows: Workflows, body: Decision | None = None) -> Run:
    decision = body or Decision()
    by = decision.by or "operator"
    return await workflows.decide(ref, step, False, by, decision.comment, decision.rework)


@router.post("/{ref}/signals/{name}", response_model=Run)
async def signal_run(ref: str, name: str, workflows: Workflows, body: Signal | None = None) -> Run:
    """Signal `name`: the steps waiting for it (`wait_for: {signal: NAME}`) succeed with `data` as
    their result; 409 when no step of the run waits for it now."""
    return await workflows.signal(ref, name, (body or Signal()).data)


@router.get("/{ref}/context", response_model=list[ContextEntry])
async def get_context(ref: str, workflows: Workflows) -> list[ContextEntry]:
    return await workflows.context(ref)


@router.get("/{ref}/context/{key}", response_model=ContextEntry)
async def get_context_key(ref: str, key: str, workflows: Workflows) -> ContextEntry:
    return (await workflows.context(ref, key))[0]


@router.put("/{ref}/context/{key}", response_model=ContextEntry)
async def put_context_key(ref: str, key: str, body: ContextPut, workflows: Workflows) -> ContextEntry:
    """Compare-and-set: 409 when `expected_version` is not the stored version (0: must not exist)."""
    return await workflows.put_context(ref, key, body.value, body.expected_version)
