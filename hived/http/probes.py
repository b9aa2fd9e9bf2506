"""Liveness, readiness and the daemon summary."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from hived.http.deps import Daemon
from hived.model import __version__
from hived.model.schemas import Health, Status
from hived.store.db import DatabaseUnavailable

router = APIRouter(tags=["daemon"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok", version=__version__)


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(orch: Daemon) -> Health | JSONResponse:
    try:
        ok = orch.started and await orch.db.migrations_current()
    except DatabaseUnavailable:
        ok = False
    health = Health(status="ready" if ok else "not ready", version=__version__)
    return health if ok else JSONResponse(health.model_dump(), status_code=503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(orch: Daemon) -> Response:
    return Response(orch.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/status", response_model=Status)
async def status(orch: Daemon) -> Status:
    return await orch.status()
