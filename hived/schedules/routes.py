"""Schedule routes: define one (`PUT /schedules/{name}`, what `hivectl apply` sends for `kind:
Schedule`), list them, show one with its next and last start, pause, resume, trigger, delete."""

from __future__ import annotations

from fastapi import APIRouter

from hived.errors import Invalid
from hived.http.deps import SchedulesDep
from hived.model.schedules import AppliedSchedule, Fired, ScheduleInfo, ScheduleList, ScheduleSpec

router = APIRouter(prefix="/schedules", tags=["schedules"])


@router.put("/{name}", response_model=AppliedSchedule)
async def apply_schedule(name: str, spec: ScheduleSpec, schedules: SchedulesDep) -> AppliedSchedule:
    """Create or change a schedule (`action`: created, configured or unchanged)."""
    if spec.name != name:
        raise Invalid(f"name: {spec.name!r} is not the name in the path ({name!r})")
    return await schedules.apply(spec)


@router.get("", response_model=ScheduleList)
async def list_schedules(schedules: SchedulesDep) -> ScheduleList:
    items = schedules.list()
    return ScheduleList(items=items, total=len(items))


@router.get("/{name}", response_model=ScheduleInfo)
async def get_schedule(name: str, schedules: SchedulesDep) -> ScheduleInfo:
    return schedules.info(name)


@router.post("/{name}/pause", response_model=ScheduleInfo)
async def pause_schedule(name: str, schedules: SchedulesDep) -> ScheduleInfo:
    """No start until resumed."""
    return await schedules.pause(name, True)


@router.post("/{name}/resume", response_model=ScheduleInfo)
async def resume_schedule(name: str, schedules: SchedulesDep) -> ScheduleInfo:
    """Start again at the cron's next time (times passed while paused are not caught up)."""
    return await schedules.pause(name, False)


@router.post("/{name}/trigger", response_model=Fired)
async def trigger_schedule(name: str, schedules: SchedulesDep) -> Fired:
    """Start now, under the schedule's overlap policy (`action`: started, skipped, queued, failed)."""
    return await schedules.trigger(name)


@router.delete("/{name}", response_model=ScheduleInfo)
async def delete_schedule(name: str, schedules: SchedulesDep) -> ScheduleInfo:
    """Remove a schedule (what it started goes on)."""
    return await schedules.delete(name)
