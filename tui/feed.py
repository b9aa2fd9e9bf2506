"""The dashboard's reads of hived, on hivectl's `AsyncClient`: the snapshot the panes start from, as
the plain dicts `tui.state.Fleet` keeps (the JSON of the API objects, like the events' data)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from hivectl.client import ApiError, AsyncClient

SNAPSHOT_TASKS = 300
SNAPSHOT_RUNS = 200
QUEUED_TASKS = 200  # queued tasks (per state) read again with each refresh: their waiting reasons


def as_dict(obj: BaseModel) -> dict[str, Any]:
    return obj.model_dump(mode="json")


def as_dicts(items: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [as_dict(item) for item in items]


async def agents(client: AsyncClient) -> list[dict[str, Any]]:
    """Every agent (the client pages through a fleet larger than hived's max_page_size)."""
    return as_dicts((await client.list_agents()).items)


async def limits(client: AsyncClient) -> list[dict[str, Any]]:
    """Every limit with its live state (an older daemon without limits: none)."""
    try:
        return as_dicts((await client.list_limits()).items)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return []


async def nodes(client: AsyncClient) -> list[dict[str, Any]]:
    """Every node of the cluster (on SQLite the one hived; an older daemon without nodes: none)."""
    try:
        return as_dicts((await client.list_nodes()).items)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return []


async def queued(client: AsyncClient) -> list[dict[str, Any]]:
    """The newest pending and scheduled tasks, with why they wait (`waiting_reason`, `not_before`)."""
    items = []
    for state in ("pending", "scheduled"):
        items += as_dicts((await client.list_tasks(status=state, limit=QUEUED_TASKS)).items)
    return sorted(items, key=lambda t: t["created_at"], reverse=True)


async def snapshot(client: AsyncClient) -> dict[str, Any]:
    """Everything the panes show, read now: status (with the event id to follow from), agents,
    recent tasks, runs (an older daemon without workflow routes: no runs), limits and nodes."""
    status = await client.status()
    fleet = await agents(client)
    tasks = (await client.list_tasks(limit=SNAPSHOT_TASKS)).items
    try:
        runs = (await client.list_runs(limit=SNAPSHOT_RUNS)).items
    except ApiError as exc:
        if exc.status != 404:
            raise
        runs = []
    return {
        "status": as_dict(status),
        "agents": fleet,
        "tasks": as_dicts(tasks),
        "runs": as_dicts(runs),
        "limits": await limits(client),
        "nodes": await nodes(client),
    }
