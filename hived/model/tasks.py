"""Wire schemas of tasks: what `POST /tasks` takes and what the task routes return. Apart from
hived.model.schemas (agents and the agent protocol) so that a client that only submits and reads tasks
(`hivectl task submit`) builds these models alone; schemas re-exports them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, field_validator, model_validator

from hived.model.fields import Capabilities, Duration, JsonObject, Labels, Strict, TaskType, Text
from hived.model.limits import LimitRef, TakenLimit, check_refs
from hived.model.usage import Budget, BudgetState, Estimate, UsageSums, check_estimate


class RetryPolicy(Strict):
    initial: Duration = 1.0
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    max: Duration = 60.0
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)


class TaskSubmit(Strict):
    type: TaskType
    payload: JsonObject = Field(default_factory=dict)
    priority: int = Field(default=5, ge=0, le=9, strict=True)
    requires: Capabilities = Field(default_factory=list)
    max_attempts: int = Field(default=3, ge=1, le=100)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: Duration | None = None
    stall_timeout: Duration | None = None
    success_when: str | None = None
    idempotency_key: Text | None = Field(default=None, min_length=1, max_length=200)
    limits: Annotated[list[LimitRef], AfterValidator(check_refs)] = Field(default_factory=list)
    labels: Labels = Field(default_factory=dict)
    delay: Duration | None = Field(default=None, description="start no sooner than this from now")
    at: AwareDatetime | None = Field(default=None, description="start no sooner than this time")
    expires_in: Duration | None = Field(default=None, description="not started by then: it fails")
    budget: Budget | None = Field(default=None, description="stop the task when its spend passes this")
    estimate: Estimate | None = Field(default=None, description="what it expects to spend")

    @model_validator(mode="after")
    def _timing(self) -> TaskSubmit:
        check_estimate(self.estimate, self.budget)
        if self.delay is not None and self.at is not None:
            raise ValueError("delay: give delay or at, not both")
        if self.expires_in is not None and self.delay is not None and self.expires_in <= self.delay:
            raise ValueError("expires_in: the task would expire before it is due (delay)")
        return self

    @field_validator("success_when")
    @classmethod
    def _success_when(cls, value: str | None) -> str | None:
        if value is not None:
            # Imported here: the CEL library is big, and hive-agent (which shares these schemas)
            # never validates a submission.
            from hived.model.expressions import check_syntax

            check_syntax(value)
        return value


class Attempt(BaseModel):
    number: int
    agent_id: str | None
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str | None = None
    reason: str | None = None
    error: str | None = None
    usage: UsageSums | None = None  # what this attempt reported it spent


class Task(BaseModel):
    id: str
    type: str
    status: str
    priority: int
    requires: list[str]
    payload: dict[str, Any]
    agent_id: str | None
    attempts: int
    max_attempts: int
    result: dict[str, Any] | None
    error: str | None
    idempotency_key: str | None = None
    run_id: str | None = None  # the workflow run this task is a step of
    timeout: float | None = None
    next_attempt_at: datetime | None = None
    limits: list[TakenLimit] = Field(default_factory=list)  # with each key as rendered at submit
    labels: dict[str, str] = Field(default_factory=dict)
    not_before: datetime | None = None  # scheduled (--delay, --at): not started before this time
    expires_at: datetime | None = None  # not started by then: failed, error `expired: ...`
    waiting_reason: str | None = None  # why a pending task is not assigned: `limit NAME[KEY]`, `paused (...)`
    budget: BudgetState | None = None  # its budget (task show: with what was spent and what is left)
    estimate: Estimate | None = None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class TaskDetail(Task):
    attempt_history: list[Attempt]
    usage: UsageSums | None = None  # summed over its attempts


class TaskList(BaseModel):
    items: list[Task]
    total: int
    next_offset: int | None = Field(
        default=None, description="where the next page starts (a page may end early: max_page_bytes)"
    )
