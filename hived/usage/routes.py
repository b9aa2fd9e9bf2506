"""Usage routes: the spend report (`GET /usage?by=agent&since=24h`, what `hivectl usage` shows) and
the resume of a run a budget paused (`POST /runs/{ref}/resume`, `hivectl workflow resume`)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from hived.errors import Invalid
from hived.http.deps import BudgetsDep, UsageDep, Workflows
from hived.model.durations import parse_duration
from hived.model.runs import Run
from hived.model.usage import BY, ResumeRequest, UsageReport

router = APIRouter(tags=["usage"])


@router.get("/usage", response_model=UsageReport)
async def usage_report(
    usage: UsageDep,
    by: str = Query("agent", description=f"one of {', '.join(BY)}"),
    since: str | None = Query(None, description="only reports recorded in this last while, e.g. 24h"),
) -> UsageReport:
    """What handlers reported they spent, summed per agent, workflow, run, model, day or task."""
    seconds = None
    if since is not None:
        try:
            seconds = parse_duration(since)
        except ValueError as exc:
            raise Invalid(f"since: {exc}") from None
    return await usage.report(by, seconds)


@router.post("/runs/{ref}/resume", response_model=Run, responses={409: {}})
async def resume_run(ref: str, request: ResumeRequest, workflows: Workflows, budgets: BudgetsDep) -> Run:
    """Resume a run a budget paused, raising its budget (and its steps') by `add_budget` dollars and
    `add_tokens` first; 409 when it is not paused, or would still be over its budget."""
    run_id = await workflows.run_id(ref)
    await budgets.resume(run_id, request)
    return await workflows.get_run(run_id)
