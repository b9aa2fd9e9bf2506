"""Routes of what attempts leave: `GET /tasks/{id}/diff`, `GET /tasks/{id}/artifacts[/{name}]`, and the
agent's upload of an artifact (`POST /agents/{id}/artifacts`, fenced by the attempt's lease)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from hived.http.deps import AttemptFilesDep, Protocol
from hived.model.workspaces import Artifact, ArtifactChunk, ArtifactList, AttemptDiff

router = APIRouter(tags=["workspaces and artifacts"])
Attempt = Query(None, ge=1, le=10_000, description="that attempt (default: the latest that has one)")


@router.post("/agents/{agent_id}/artifacts", response_model=Artifact, responses={409: {}, 413: {}})
async def upload_artifact(
    agent_id: str, chunk: ArtifactChunk, protocol: Protocol, files: AttemptFilesDep
) -> Artifact:
    """Part of an artifact of an attempt this agent holds (base64); the file appears on `final`."""
    protocol.check_incarnation(agent_id, chunk.incarnation)
    return await files.receive(agent_id, chunk)


@router.get("/tasks/{task_id}/diff", response_model=AttemptDiff)
async def task_diff(task_id: str, files: AttemptFilesDep, attempt: int | None = Attempt) -> AttemptDiff:
    """The attempt's workspace: branch, commits and `git diff base...branch` (up to max_diff_bytes)."""
    return await files.diff(task_id, attempt)


@router.get("/tasks/{task_id}/artifacts", response_model=ArtifactList)
async def task_artifacts(task_id: str, files: AttemptFilesDep, attempt: int | None = Attempt) -> ArtifactList:
    return await files.artifacts(task_id, attempt)


@router.get("/tasks/{task_id}/artifacts/{name:path}", response_class=FileResponse)
async def task_artifact(
    task_id: str, name: str, files: AttemptFilesDep, attempt: int | None = Attempt
) -> FileResponse:
    path, item = await files.artifact(task_id, name, attempt)
    return FileResponse(
        path, media_type="application/octet-stream", headers={"X-Hive-Attempt": str(item.attempt)}
    )
