"""The two requests of every task's life, `POST /tasks` and an agent's `POST /agents/{id}/work`,
served by plain Starlette routes placed before FastAPI's.

They do what the FastAPI routes do (hived/tasks/routes.py, hived/agents/protocol_routes.py), with the
same models and services: the body is read as FastAPI reads it and validated by the same pydantic
model; a bad one raises the RequestValidationError that the app answers 422 naming the field, and a
HiveError gets the app's answer too; the middlewares (auth, body limit, metrics) run the same. What
they leave out is FastAPI's per-request machinery (solving dependencies, validating the answer a
second time), a fifth of the daemon's time for a small request. The FastAPI routes stay for the
OpenAPI document and answer every other request (tests/unit/test_lean_routes.py: alike answers)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi.exceptions import HTTPException, RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hived.model.schemas import TaskSubmit, WorkRequest
from hived.orchestrator import AgentOrchestrator

M = TypeVar("M", bound=BaseModel)
SUBMIT = TypeAdapter(TaskSubmit)
WORK = TypeAdapter(WorkRequest)


def lean_routes(orchestrator: AgentOrchestrator) -> list[Route]:
    async def submit_task(request: Request) -> Response:
        request.scope["route"] = submit  # the route the metrics name
        task = await orchestrator.tasks.submit(read(SUBMIT, await request.body()))
        return answer(task, 201)

    async def agent_work(request: Request) -> Response:
        request.scope["route"] = work
        body = read(WORK, await request.body())
        return answer(await orchestrator.protocol.work(request.path_params["agent_id"], body), 200)

    submit = Route("/tasks", submit_task, methods=["POST"], include_in_schema=False)
    work = Route("/agents/{agent_id}/work", agent_work, methods=["POST"], include_in_schema=False)
    return [submit, work]


def read(adapter: TypeAdapter[M], body: bytes) -> M:
    """The body as FastAPI reads it: Python's JSON parser (which names no field; pydantic's own
    would refuse deep nesting and lone surrogates before the checks that name the field), then the
    model."""
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**error, "ctx": {"error": exc.msg}}]) from None
    except ValueError:  # not UTF-8: FastAPI's answer
        raise HTTPException(400, "There was an error parsing the body") from None
    try:
        return adapter.validate_python(data, from_attributes=True)  # as FastAPI validates a body
    except ValidationError as exc:
        errors: list[Any] = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def answer(model: BaseModel, status: int) -> Response:
    return Response(model.model_dump_json(), status, media_type="application/json")
