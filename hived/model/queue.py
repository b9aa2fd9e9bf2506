"""The queue controls' wire shapes: pauses (`hivectl queue pause|resume`) and bulk actions
(`hivectl task cancel|retry --status S ...`). No I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hived.model.fields import Capabilities, Labels, Strict, TaskType

MAX_BULK = 1000  # tasks one bulk request acts on; the CLI sends more requests for more


class PauseSelector(Strict):
    """Which tasks a pause holds: those of this type, requiring these capabilities (all of them), of
    runs of this workflow. Nothing given: every task."""

    type: TaskType | None = None
    requires: Capabilities = Field(default_factory=list)
    workflow: str | None = Field(default=None, min_length=1, max_length=255)


class QueuePause(PauseSelector):
    model_config = ConfigDict(extra="ignore")

    created_at: datetime


class ResumeRequest(PauseSelector):
    all: bool = Field(default=False, description="lift every pause (no selector may be given)")


class QueueState(BaseModel):
    """The queue's pauses, oldest first (the answer to a pause or a resume)."""

    paused: list[QueuePause]


BULK_STATUSES = {
    "cancel": ("pending", "scheduled", "retrying", "assigned", "running", "waiting_input"),
    "retry": ("failed", "cancelled"),
}


class BulkRequest(Strict):
    """The tasks a bulk cancel or retry acts on: those in `status` (and of `type`, with every label
    of `labels`), oldest first, at most `limit` of them."""

    status: str
    type: TaskType | None = None
    labels: Labels = Field(default_factory=dict)
    limit: int = Field(default=MAX_BULK, ge=1, le=MAX_BULK)


class BulkResult(BaseModel):
    action: Literal["cancel", "retry"]
    matched: int = Field(description="tasks matching the filter when the request was read")
    changed: list[str] = Field(description="ids of the tasks cancelled or retried")
    remaining: int = Field(description="matching tasks past this request's limit: send it again")


def check_bulk_status(action: str, status: str) -> str | None:
    """Why `status` cannot be acted on by `action`, or None."""
    allowed = BULK_STATUSES[action]
    if status not in allowed:
        return f"status: {action} takes tasks that are {', '.join(allowed)}; not {status!r}"
    return None

