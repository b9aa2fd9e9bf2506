"""The FastAPI application: create_app(orchestrator) wires the routers, errors and life cycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from hived.agents import protocol_routes as agent_protocol
from hived.agents import routes as agent_routes
from hived.auth import routes as token_routes
from hived.auth.audit import AuditLog
from hived.auth.middleware import TokenAuth
from hived.auth.peer import PeerCheck
from hived.errors import HiveError
from hived.http import probes, sse
from hived.http.body_limit import BodyLimit
from hived.http.lean import LeanApp
from hived.http.sse import StreamLimits
from hived.limits import routes as limit_routes
from hived.metrics import LatencyMiddleware
from hived.model import __version__
from hived.model.errors import format_errors
from hived.nodes import routes as node_routes
from hived.orchestrator import AgentOrchestrator
from hived.schedules import routes as schedule_routes
from hived.tasks import attempt_file_routes
from hived.tasks import routes as task_routes
from hived.usage import routes as usage_routes
from hived.workflows import routes as workflow_routes
from hived.workflows import run_routes

# FastAPI tries the routes in this order, each at a cost: the hot ones first. The order changes
# nothing else: no route's path is also matched by one before it (tests/unit/test_route_order.py).
ROUTERS = tuple(
    module.router
    for module in (
        task_routes,
        agent_protocol,
        probes,
        agent_routes,
        workflow_routes,
        run_routes,
        usage_routes,
        limit_routes,
        schedule_routes,
        node_routes,
        sse,
        token_routes,
        attempt_file_routes,
    )
)


def validation_message(exc: RequestValidationError) -> str:
    """One line naming each bad field: `priority: Input should be less than or equal to 9`."""
    return format_errors(exc.errors(), unnamed="body")


class ErrorBody(BaseModel):
    """Every refusal: one line naming the field, id or rule."""

    detail: str


# What every route may answer besides its success (documented so that clients and schemathesis
# know the shape of errors: hived's own, not FastAPI's list-of-errors for 422).
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        401: "no valid token (TCP listener)",
        403: "outside the token's scope, or a refused Host, Origin or socket peer",
        404: "no such id or name",
        409: "a conflict with the current state",
        413: "request body too large",
        429: "too many event streams for this token",
        422: "invalid input, naming the field",
        503: "the database is unavailable (down or restarting), or too many event streams: try again",
    }.items()
}


@dataclass(frozen=True)
class SocketGate:
    """For the Unix socket's app: the peer's uid (SO_PEERCRED) checked and logged (`audit`: its
    repeated changes counted, see hived.auth.audit; flushed by whoever serves the app)."""

    uids: frozenset[int]
    gid: int | None = None
    audit: AuditLog = field(default_factory=AuditLog)


@dataclass(frozen=True)
class TcpGate:
    """For the TCP listener's app: tokens are required, Host and Origin are checked."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_origins: frozenset[str] = frozenset()


def create_app(
    orchestrator: AgentOrchestrator,
    manage_lifecycle: bool = True,
    tcp: TcpGate | None = None,
    peers: SocketGate | None = None,
    streams: StreamLimits | None = None,
    lean: bool = True,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await orchestrator.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await orchestrator.shutdown()

    app = LeanApp(
        title="hived",
        version=__version__,
        lifespan=lifespan,
        description="Hive daemon API: agents, tasks, workflows and runs, the agent protocol.",
        responses=ERRORS,
    )
    app.state.orchestrator = orchestrator
    app.state.streams = streams or StreamLimits()  # one per listener: its own /events bounds

    @app.exception_handler(HiveError)
    async def hive_error(_request: Request, exc: HiveError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(LatencyMiddleware, metrics=orchestrator.metrics)
    app.add_middleware(BodyLimit, max_bytes=orchestrator.limits.max_request_bytes)
    if peers is not None:
        app.add_middleware(PeerCheck, uids=peers.uids, gid=peers.gid, audit=peers.audit)
    if tcp is not None:
        app.add_middleware(
            TokenAuth,
            tokens=orchestrator.tokens,
            agent_of=orchestrator.fleet.name_of,
            holder_of=orchestrator.fleet.holder_name,
            runs_of=orchestrator.fleet.runs_held_by,
            allowed_hosts=set(tcp.allowed_hosts),
            allowed_origins=set(tcp.allowed_origins),
        )
    if lean:  # the two requests of every task, without FastAPI's per-request machinery
        app.enable_lean(orchestrator)
    return app
