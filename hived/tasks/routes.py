"""Task routes (the PRD's) plus retry and logs."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from hived.http.deps import Bounds, Tasks
from hived.model.schemas import MAX_OFFSET, Task, TaskDetail, TaskList, TaskSubmit

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.post("", response_model=Task, status_code=201)
async def submit_task(task: TaskSubmit, tasks: Tasks) -> Task:
    return await tasks.submit(task)


class TaskBatch(BaseModel):
    tasks: list[TaskSubmit] = Field(min_length=1, max_length=1000)


@router.post("/batch", response_model=TaskList, status_code=201)
async def submit_tasks(batch: TaskBatch, tasks: Tasks) -> TaskList:
    """Submit up to 1,000 tasks in one transaction: all are accepted, or none."""
    items = await tasks.submit_many(batch.tasks)
    return TaskList(items=items, total=len(items))


@router.get("", response_model=TaskList)
async def list_tasks(
    tasks: Tasks,
    bounds: Bounds,
    status: str | None = None,
    type: str | None = None,
    agent: str | None = None,
    run: str | None = Query(None, description="only the tasks of this workflow run (id or prefix)"),
    limit: int | None = Query(None, ge=1, le=10**6, description="default 100; at most hived's max_page_size"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> TaskList:
    limit = bounds.page(limit, 100)
    items, total = await tasks.list(
        status=status, type=type, agent=agent, limit=limit, offset=offset, run=run
    )
    end = offset + len(items)
    return TaskList(items=items, total=total, next_offset=end if end < total else None)


@router.get("/{ref}", response_model=TaskDetail)
async def get_task(
    ref: str,
    tasks: Tasks,
    wait: float = Query(0, ge=0, le=60, description="answer once the task has ended, or after this many s"),
) -> TaskDetail:
    return await tasks.get(ref, wait)


@router.put("/{ref}/cancel", response_model=Task)
async def cancel_task(ref: str, tasks: Tasks) -> Task:
    return await tasks.cancel(ref)


@router.post("/{ref}/retry", response_model=Task)
async def retry_task(ref: str, tasks: Tasks) -> Task:
    return await tasks.retry(ref)


@router.get(
    "/{ref}/logs",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "attempt output"}},
)
async def task_logs(ref: str, tasks: Tasks, offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> Response:
    """Captured output of the task's attempts, oldest first, from byte `offset`."""
    task = await tasks.get(ref)
    text = await tasks.output(task.id)
    data = text.encode()[offset:]
    return Response(
        data.decode("utf-8", "replace"),
        media_type="text/plain",
        headers={"X-Log-Offset": str(offset + len(data))},
    )
