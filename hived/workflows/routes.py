"""Workflow template routes (the PRD's `POST /workflows`, `GET /workflows/{id}`,
`POST /workflows/{id}/execute`) plus the list."""

from __future__ import annotations

from fastapi import APIRouter, Query

from hived.http.deps import Workflows
from hived.model.runs import AppliedWorkflow, ExecuteRequest, Run, WorkflowInfo, WorkflowList
from hived.model.schemas import MAX_VERSION
from hived.model.workflow import WorkflowSpec

router = APIRouter(prefix="/workflows", tags=["workflows"])


@router.post("", response_model=AppliedWorkflow, status_code=201)
async def apply_workflow(spec: WorkflowSpec, workflows: Workflows) -> AppliedWorkflow:
    """Store a template; a new version when its content changed (`action` says which)."""
    return await workflows.apply(spec)


@router.get("", response_model=WorkflowList)
async def list_workflows(workflows: Workflows) -> WorkflowList:
    items = await workflows.list()
    return WorkflowList(items=items, total=len(items))


@router.get("/{ref}", response_model=WorkflowInfo)
async def get_workflow(
    ref: str, workflows: Workflows, version: int | None = Query(None, ge=1, le=MAX_VERSION)
) -> WorkflowInfo:
    """A template by name (newest version unless `version`), id or id prefix."""
    return await workflows.get(ref, version)


@router.post("/{ref}/execute", response_model=Run, status_code=201)
async def execute_workflow(ref: str, workflows: Workflows, body: ExecuteRequest | None = None) -> Run:
    """Start a run of the newest version (or `version`) with `params` (strings are parsed to the
    defaults' types)."""
    request = body or ExecuteRequest()
    return await workflows.execute(ref, request.params, request.version)
