"""Wire schemas of the workflow and run routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from hived.model.fields import JsonObject, Strict, Text
from hived.model.usage import BudgetState, UsageSums
from hived.model.values import check_json


class WorkflowInfo(BaseModel):
    id: str
    name: str
    version: int
    description: str | None = None
    params: dict[str, Any]
    steps: list[dict[str, Any]]
    timeout: float | None = None
    created_at: datetime


class AppliedWorkflow(WorkflowInfo):
    action: str  # created | updated (a new version) | unchanged


class WorkflowList(BaseModel):
    items: list[WorkflowInfo]
    total: int


class ExecuteRequest(Strict):
    params: JsonObject = Field(default_factory=dict)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1, description="this version, not the newest")


class RunStep(BaseModel):
    id: str
    type: str
    needs: list[str]
    status: str
    task_id: str | None = None
    agent_id: str | None = None
    result: Any = None
    error: str | None = None
    decided_by: str | None = None
    child_run_id: str | None = Field(default=None, description="a workflow: step: the run it started")
    child: Run | None = Field(default=None, description="that run, nested")
    items: dict[str, int] | None = Field(
        default=None, description="a running for_each step: its items' total, ended, running, failed"
    )
    started_at: datetime | None = None
    finished_at: datetime | None = None
    signal: str | None = Field(default=None, description="the signal a wait_for step waits for")
    waiting_until: datetime | None = Field(
        default=None, description="a waiting step's wake-up: a sleep's end, a signal's or approval's timeout"
    )


class Run(BaseModel):
    id: str
    workflow: str
    workflow_id: str
    version: int
    status: str
    params: dict[str, Any]
    error: str | None = None
    outputs: Any = Field(default=None, description="the workflow's outputs, rendered when it succeeded")
    parent_run_id: str | None = Field(
        default=None, description="a sub-workflow's run: the run (and step) that started it"
    )
    parent_step: str | None = None
    rerun_of: str | None = Field(default=None, description="the run this one reruns")
    steps: list[RunStep]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    revision: int = Field(
        default=0,
        description="grows with every change of the run, of its steps, or of their tasks' assignment; "
        "GET /runs/{id}?wait=S&since=REVISION answers as soon as it is no longer REVISION",
    )
    usage: UsageSums | None = None  # what its steps' tasks spent
    budget: BudgetState | None = None  # the run's budget (with what resumes added), and what is left


RunStep.model_rebuild()


class RunList(BaseModel):
    items: list[Run]
    total: int


class Decision(Strict):
    """An operator's answer to an approval gate."""

    by: Text | None = Field(default=None, max_length=255)
    comment: Text | None = Field(default=None, max_length=2000)
    rework: str | None = Field(
        default=None, max_length=63, description="reject only: run this earlier step and those after it again"
    )


class ContextEntry(BaseModel):
    key: str
    value: Any
    version: int
    updated_at: datetime | None = None


class ContextPut(Strict):
    """Compare-and-set: `expected_version` 0 creates only, N replaces only version N, absent writes."""

    value: Annotated[Any, AfterValidator(check_json)]
    expected_version: int | None = Field(default=None, ge=0, le=2**62)


class RerunRequest(Strict):
    """`hivectl workflow rerun RUN [--from STEP]`: a new run keeping the results of the steps that
    succeeded; `from_step` and what follows it run again (with no `from_step`: the steps that did not
    succeed and what follows them)."""

    from_step: str | None = Field(default=None, max_length=100)
