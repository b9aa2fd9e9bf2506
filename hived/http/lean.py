"""The requests of every task's life, `POST /tasks` (with `?wait=SECONDS`: answered once the task
has ended), an agent's `POST /agents/{id}/work` and
`GET /tasks/{ref}` (the native wait: `?wait=SECONDS`), served beside FastAPI's stack rather than
through it (and `GET /events` with a plain query: `hived.http.sse.LeanEvents`, for hundreds of
clients that connect at once).

`LeanApp` is the FastAPI application, whose `__call__` hands these requests to a short chain:
Starlette's ServerErrorMiddleware (an unexpected error: 500, logged by uvicorn), then the app's own
middlewares, the same instances' classes with the same arguments (auth or the socket's peer check,
body limit, metrics), then a plain ASGI endpoint. The endpoint does what the FastAPI routes do
(hived/tasks/routes.py, hived/agents/protocol_routes.py), with the same models and services: the
body is read as FastAPI reads it and validated by the same pydantic model; a bad one raises the
RequestValidationError, and every error is answered by the app's own exception handlers (422 naming
the field, a HiveError's status and detail, an HTTPException's). What it leaves out is FastAPI's and
Starlette's per-request machinery (telemetry, exception and exit-stack middlewares, routing, solving
dependencies, Request and Response objects, validating the answer a second time): a quarter of
hived's time for a small request. The FastAPI routes stay for the OpenAPI document, for `lean=False`
and for every other request (tests/integration/test_lean_routes.py: alike answers)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI
from fastapi.exceptions import HTTPException, RequestValidationError
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.datastructures import QueryParams
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.routing import Route

from hived.http.sse import LeanEvents
from hived.model.schemas import MAX_WAIT, TaskSubmit, WorkRequest
from hived.orchestrator import AgentOrchestrator

M = TypeVar("M", bound=BaseModel)
ASGI = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
SUBMIT = TypeAdapter(TaskSubmit)
WORK = TypeAdapter(WorkRequest)
WAIT = TypeAdapter(Annotated[float, Field(ge=0, le=MAX_WAIT)])  # as hived/tasks/routes.py reads `?wait=`
JSON_HEADER = (b"content-type", b"application/json")


async def _unused(_request: Request) -> None:  # the routes below only name the path for the metrics
    raise AssertionError("served by LeanApp")


SUBMIT_ROUTE = Route("/tasks", _unused, methods=["POST"], include_in_schema=False)
WORK_ROUTE = Route("/agents/{agent_id}/work", _unused, methods=["POST"], include_in_schema=False)
TASK_ROUTE = Route("/tasks/{ref}", _unused, methods=["GET"], include_in_schema=False)


def agent_of(path: str) -> str | None:
    """The agent id of `/agents/{agent_id}/work` (Starlette's `{name}`: one non-empty segment)."""
    if not (path.startswith("/agents/") and path.endswith("/work")):
        return None
    agent_id = path[8:-5]
    return agent_id if agent_id and "/" not in agent_id else None


def task_of(path: str) -> str | None:
    """The ref of `/tasks/{ref}` (one non-empty segment)."""
    ref = path[7:] if path.startswith("/tasks/") else ""
    return ref if ref and "/" not in ref else None


class LeanApp(FastAPI):
    """FastAPI, with `POST /tasks`, `POST /agents/{id}/work` and `GET /tasks/{ref}` served by `lean`
    (see `enable_lean`)."""

    lean: ASGI | None = None
    lean_events: ASGI | None = None
    events: LeanEvents | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.lean is not None and scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            if (method == "POST" and (path == "/tasks" or agent_of(path) is not None)) or (
                method == "GET" and task_of(path) is not None
            ):
                scope["app"] = self
                await self.lean(scope, receive, send)
                return
            if method == "GET" and self.events is not None and self.events.wants(scope):
                scope["app"] = self
                await self.lean_events(scope, receive, send)  # type: ignore[misc]
                return
        await super().__call__(scope, receive, send)

    def enable_lean(self, orchestrator: AgentOrchestrator) -> None:
        """Build the short chains, once every middleware is added."""
        self.lean = self._chain(Endpoint(self, orchestrator))
        self.events = LeanEvents(orchestrator.events, self.state.streams)
        self.lean_events = self._chain(self.events)

    def _chain(self, endpoint: ASGI) -> ASGI:
        """`endpoint` behind the app's own middlewares and Starlette's ServerErrorMiddleware."""
        chain = endpoint
        for cls, args, kwargs in reversed(self.user_middleware):
            chain = cls(chain, *args, **kwargs)
        return ServerErrorMiddleware(chain, debug=self.debug)


class Endpoint:
    def __init__(self, app: FastAPI, orchestrator: AgentOrchestrator) -> None:
        self.app = app
        self.tasks = orchestrator.tasks
        self.protocol = orchestrator.protocol

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            if scope["method"] == "GET":
                scope["route"] = TASK_ROUTE
                ref = task_of(scope["path"])
                assert ref is not None
                status, model = 200, await self.tasks.get(ref, wait_of(scope))
            elif scope["path"] == "/tasks":
                scope["route"] = SUBMIT_ROUTE  # the route the metrics name
                submission, wait = submit_of(scope, await read_body(receive))
                status, model = 201, await self.tasks.outcome(await self.tasks.submit(submission), wait)
            else:
                scope["route"] = WORK_ROUTE
                agent_id = agent_of(scope["path"])
                assert agent_id is not None
                status, model = 200, await self.protocol.work(agent_id, read(WORK, await read_body(receive)))
        except Exception as exc:
            handler = next(
                (
                    self.app.exception_handlers[c]
                    for c in type(exc).__mro__
                    if c in self.app.exception_handlers
                ),
                None,
            )
            if handler is None:
                raise  # ServerErrorMiddleware answers 500
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)
            return
        data = model.model_dump_json().encode()
        headers = [(b"content-length", str(len(data)).encode()), JSON_HEADER]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def wait_of(scope: dict[str, Any]) -> float:
    """`?wait=` as FastAPI reads a query parameter (its last value; 0 when absent)."""
    raw = QueryParams(scope["query_string"]).get("wait") if scope["query_string"] else None
    if raw is None:
        return 0.0
    try:
        return WAIT.validate_python(raw)
    except ValidationError as exc:
        errors: list[Any] = [
            {**err, "loc": ("query", "wait", *err["loc"])} for err in exc.errors(include_url=False)
        ]
        raise RequestValidationError(errors) from None


def submit_of(scope: dict[str, Any], body: bytes) -> tuple[TaskSubmit, float]:
    """The submission and its `?wait=`, refused as FastAPI refuses them: a body that is not JSON
    alone, else the query's errors and the body's together."""
    try:
        wait, errors = wait_of(scope), []
    except RequestValidationError as exc:
        wait, errors = 0.0, list(exc.errors())
    try:
        submission = read(SUBMIT, body)
    except RequestValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise
        raise RequestValidationError([*errors, *exc.errors()]) from None
    if errors:
        raise RequestValidationError(errors)
    return submission, wait


async def read_body(receive: Any) -> bytes:
    """The whole body, as Starlette's Request.body() reads it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read(adapter: TypeAdapter[M], body: bytes) -> M:
    """The body as FastAPI reads it. A good body of a good request is read by pydantic's JSON parser
    in one step (the same model); anything it refuses is read again as FastAPI does, so that the
    answer is FastAPI's: Python's JSON parser (which names no field; pydantic's would refuse deep
    nesting and lone surrogates before the checks that name the field), then the model."""
    try:
        return adapter.validate_json(body)
    except ValueError:  # (ValidationError is one)
        pass
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
