"""Schedules in the vocabulary: the `kind: Schedule` document (a workflow, or a task, started at the
times of a 5-field cron expression in a time zone, with an overlap policy and a catch-up window), and
what the API shows of one. No I/O: hived's schedules slice (hived/schedules/) runs them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, Field, model_validator

from hived.model.fields import Duration, JsonObject, Strict
from hived.model.limits import check_limit_name
from hived.model.schemas import TaskSubmit

Overlap = Literal["skip", "queue", "cancel_previous"]
CRON_FIELDS = "minute hour day-of-month month day-of-week"
MAX_QUEUED = 100  # overlap: queue keeps at most this many starts waiting for the previous run


def check_cron(value: str) -> str:
    """A 5-field cron expression that names at least one time; ValueError for a user."""
    from croniter import croniter  # imported when a schedule is read: hivectl starts without it

    fields = value.split() if isinstance(value, str) else []
    if len(fields) != 5:
        raise ValueError(f"{value!r}: expected 5 fields ({CRON_FIELDS}), got {len(fields)}")
    try:
        croniter(value, datetime(2026, 1, 1, tzinfo=UTC)).get_next(datetime)
    except Exception as exc:  # croniter's errors say which field is wrong, in their own words
        raise ValueError(f"{value!r} is not a valid cron expression ({exc})") from None
    return " ".join(fields)


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like UTC or Europe/Paris)") from None
    return value


class ScheduleSpec(Strict):
    """A Schedule document (`kind: Schedule`) or the body of `PUT /schedules/{name}`."""

    name: Annotated[str, AfterValidator(check_limit_name)]
    workflow: str | None = Field(default=None, description="the workflow to run (its newest version)")
    params: JsonObject = Field(default_factory=dict, description="the run's params (workflow only)")
    task: TaskSubmit | None = Field(default=None, description="or a task to submit (as POST /tasks)")
    cron: Annotated[str, AfterValidator(check_cron)] = Field(description=f"5 fields: {CRON_FIELDS}")
    timezone: Annotated[str, AfterValidator(check_timezone)] = Field(
        default="UTC", description="the zone the cron times are read in"
    )
    overlap: Overlap = Field(
        default="skip", description="when the previous run is still going: skip, queue or cancel_previous"
    )
    catchup: Duration = Field(
        default=0.0, description="a time missed while hived was down within this window runs once at start"
    )

    @model_validator(mode="after")
    def _target(self) -> ScheduleSpec:
        if (self.workflow is None) == (self.task is None):
            raise ValueError("give exactly one of workflow or task")
        if self.task is not None and self.params:
            raise ValueError("params are a workflow's: put a task's input in task.payload")
        return self


class ScheduleInfo(BaseModel):
    name: Annotated[str, AfterValidator(check_limit_name)]
    workflow: str | None = None
    task: str | None = Field(default=None, description="the task type, for a task schedule")
    params: dict[str, Any] = Field(default_factory=dict)
    cron: str
    timezone: str
    overlap: str
    catchup: float
    paused: bool
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_run_id: str | None = Field(default=None, description="the run (or task) it started last")
    running: str | None = Field(default=None, description="the run (or task) still going, if any")
    queued: int = Field(default=0, description="overlap: queue: starts waiting for the running one")
    last_error: str | None = None
    created_at: datetime
    updated_at: datetime


class ScheduleList(BaseModel):
    items: list[ScheduleInfo]
    total: int


class AppliedSchedule(BaseModel):
    name: str
    action: str  # created | configured | unchanged


class Fired(BaseModel):
    """What a start did (`hivectl schedule trigger`): `started` (id: the run or task), `skipped`,
    `queued` (the previous one still runs), or `failed` (error)."""

    name: str
    action: str
    id: str | None = None
    error: str | None = None
