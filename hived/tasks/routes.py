"""Task routes (the PRD's) plus retry and logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from hived.errors import Invalid
from hived.http.deps import Bounds, Tasks, TerminalsDep
from hived.model.fields import parse_label
from hived.model.queue import BulkRequest, BulkResult, PauseSelector, QueueState, ResumeRequest
from hived.model.schemas import MAX_OFFSET, MAX_WAIT, Task, TaskDetail, TaskList, TaskSubmit
from hived.model.terminals import TaskInput, Terminal

router = APIRouter(prefix="/tasks", tags=["tasks"])
Wait = Annotated[
    float, Query(ge=0, le=MAX_WAIT, description="answer once the task has ended, or after this many s")
]


@router.post("", response_model=Task, status_code=201)
async def submit_task(
    task: TaskSubmit,
    tasks: Tasks,
    wait: Wait = 0,
) -> Task:
    return await tasks.outcome(await tasks.submit(task), wait)


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
    label: list[str] | None = Query(None, description="KEY=VALUE: only tasks with this label; repeatable"),
) -> TaskList:
    limit = bounds.page(limit, 100)
    items, total = await tasks.list(
        status=status, type=type, agent=agent, limit=limit, offset=offset, run=run, labels=labels_of(label)
    )
    end = offset + len(items)
    return TaskList(items=items, total=total, next_offset=end if end < total else None)


def labels_of(given: list[str] | None) -> dict[str, str]:
    labels = {}
    for text in given or []:
        try:
            key, value = parse_label(text)
        except ValueError as exc:
            raise Invalid(f"label: {exc}") from None
        labels[key] = value
    return labels


@router.post("/cancel", response_model=BulkResult)
async def cancel_tasks(request: BulkRequest, tasks: Tasks) -> BulkResult:
    """Cancel the tasks in `status` (of `type`, with every label of `labels`), at most `limit`, the
    oldest first; `remaining` says how many more match."""
    return await tasks.bulk("cancel", request)


@router.post("/retry", response_model=BulkResult)
async def retry_tasks(request: BulkRequest, tasks: Tasks) -> BulkResult:
    """Queue again the failed or cancelled tasks matching the filter, as `/tasks/cancel` picks them."""
    return await tasks.bulk("retry", request)


@router.post("/pause", response_model=QueueState)
async def pause_queue(selector: PauseSelector, tasks: Tasks) -> QueueState:
    """Hold the tasks of `type`, requiring `requires`, of runs of `workflow` (none given: every
    task): they stay pending until resumed. Stored: a restart of hived keeps it."""
    return QueueState(paused=await tasks.controls.pause(selector))


@router.post("/resume", response_model=QueueState)
async def resume_queue(request: ResumeRequest, tasks: Tasks) -> QueueState:
    """Lift the pause of the same selector (`all`: every pause); 404 if there is none."""
    return QueueState(paused=await tasks.controls.resume(request))


@router.get("/{ref}", response_model=TaskDetail)
async def get_task(
    ref: str,
    tasks: Tasks,
    wait: Wait = 0,
) -> TaskDetail:
    return await tasks.get(ref, wait)


@router.put("/{ref}/cancel", response_model=Task)
async def cancel_task(ref: str, tasks: Tasks) -> Task:
    return await tasks.cancel(ref)


@router.post("/{ref}/input", response_model=Task, responses={409: {}})
async def send_input(ref: str, body: TaskInput, tasks: Tasks, terminals: TerminalsDep) -> Task:
    """Type a line (then Enter) into a running `tty: true` task's terminal; 409 when it is not one."""
    task = await tasks.get(ref)
    terminals.send(task.id, task.status, body.text)
    return task


@router.get("/{ref}/terminal", response_model=Terminal, responses={409: {}})
async def task_terminal(ref: str, tasks: Tasks, terminals: TerminalsDep) -> Terminal:
    """Where a running `tty: true` task's tmux session is (`hivectl task attach`)."""
    task = await tasks.get(ref)
    return terminals.terminal(task.id, task.status)


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
