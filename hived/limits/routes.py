"""Limit routes: define one (`PUT /limits/{name}`, what `hivectl apply` sends for `kind: Limit`),
list them, show one with its live state (tokens left, holders, waiting, closed-until), delete one
that no task holds or waits for."""

from __future__ import annotations

from fastapi import APIRouter

from hived.errors import Invalid
from hived.http.deps import LimitsDep
from hived.model.limits import AppliedLimit, LimitInfo, LimitList, LimitSpec

router = APIRouter(prefix="/limits", tags=["limits"])


@router.put("/{name}", response_model=AppliedLimit)
async def apply_limit(name: str, spec: LimitSpec, limits: LimitsDep) -> AppliedLimit:
    """Create or change a limit (`action`: created, configured or unchanged)."""
    if spec.name != name:
        raise Invalid(f"name: {spec.name!r} is not the name in the path ({name!r})")
    return await limits.apply(spec)


@router.get("", response_model=LimitList)
async def list_limits(limits: LimitsDep) -> LimitList:
    items = limits.list()
    return LimitList(items=items, total=len(items))


@router.get("/{name}", response_model=LimitInfo)
async def get_limit(name: str, limits: LimitsDep) -> LimitInfo:
    return limits.info(name)


@router.delete("/{name}", response_model=LimitInfo)
async def delete_limit(name: str, limits: LimitsDep) -> LimitInfo:
    """Remove a limit (the limit as it was); 409 while tasks hold it or wait for it."""
    return await limits.delete(name)
