"""Usage and budgets on the wire: what a handler reports it spent (`usage` in a result, `::hive-usage`
increments while it runs), the batches hive-agent sends them in, the budgets and estimates of tasks,
steps, runs, agents and the daemon, and the sums hived shows. No I/O.

Money is kept as whole millionths of a dollar (micro-USD) once it reaches hived: sums over the same
reports then agree to the last digit whichever way they are grouped (per attempt, task, run, agent,
model, day), as sums of floats would not."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from hived.model.errors import format_errors
from hived.model.fields import Strict

MICRO = 1_000_000  # micro-USD per dollar
MAX_COST_USD = 1e9  # one report, one budget
MAX_TOKENS = 10**15
USAGE_FIELDS = ("input_tokens", "output_tokens", "cost_usd")
BY = ("agent", "workflow", "run", "model", "day", "task")
Cost = float  # dollars; refused when negative, not a number, or a boolean


def to_micro(cost_usd: float | None) -> int:
    return round((cost_usd or 0.0) * MICRO)


def to_usd(micro: int) -> float:
    return round(micro / MICRO, 6)


class Usage(Strict):
    """One report of spend: an increment (`::hive-usage`) or a result's `usage`. Fields not given
    count as 0."""

    input_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS, strict=True)
    output_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS, strict=True)
    cost_usd: Cost = Field(default=0.0, ge=0, le=MAX_COST_USD, strict=True, allow_inf_nan=False)
    model: str | None = Field(default=None, min_length=1, max_length=200)


def usage_of_result(result: Any) -> tuple[Usage | None, str | None]:
    """A result's `usage` object: (usage, None), (None, None) when it has none, or (None, why it is
    refused), naming the field (`usage.cost_usd: ...`)."""
    if not isinstance(result, dict) or "usage" not in result:
        return None, None
    raw = result["usage"]
    if not isinstance(raw, dict):
        return None, f"usage: must be an object {{input_tokens, output_tokens, cost_usd, model}}, not {raw!r}"
    try:
        return Usage.model_validate(raw), None
    except ValidationError as exc:
        return None, format_errors([{**e, "loc": ("usage", *e["loc"])} for e in exc.errors()])


class UsageBatch(Usage):
    """Increments of one attempt as hive-agent sends them (with heartbeats, or with the attempt's
    result): numbered from 1 per attempt, so that hived records each (lease, seq) once however often
    it is sent again."""

    task_id: str = Field(max_length=36)
    lease: int = Field(ge=0)
    seq: int = Field(ge=1, le=2**62)


class Budget(Strict):
    """`budget: {cost_usd: 5, tokens: 200000, on_exceed: fail|pause}`: at least one limit."""

    cost_usd: Cost | None = Field(default=None, ge=0, le=MAX_COST_USD, strict=True, allow_inf_nan=False)
    tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS, strict=True)
    on_exceed: Literal["fail", "pause"] = "fail"

    @model_validator(mode="after")
    def _a_limit(self) -> Budget:
        if self.cost_usd is None and self.tokens is None:
            raise ValueError("a budget needs a limit: cost_usd, tokens, or both")
        return self


class Estimate(Strict):
    """`estimate: {cost_usd: 0.4, tokens: 20000}`: what a task expects to spend; it does not start
    when that is more than what is left of a budget over it."""

    cost_usd: Cost | None = Field(default=None, ge=0, le=MAX_COST_USD, strict=True, allow_inf_nan=False)
    tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS, strict=True)

    @model_validator(mode="after")
    def _a_figure(self) -> Estimate:
        if self.cost_usd is None and self.tokens is None:
            raise ValueError("an estimate needs cost_usd, tokens, or both")
        return self


def check_estimate(estimate: Estimate | None, budget: Budget | None) -> None:
    """An estimate over the task's own budget can never fit: refused at once."""
    if estimate is None or budget is None:
        return
    if estimate.cost_usd is not None and budget.cost_usd is not None and estimate.cost_usd > budget.cost_usd:
        raise ValueError(f"estimate: cost_usd {estimate.cost_usd:g} is over the budget's {budget.cost_usd:g}")
    if estimate.tokens is not None and budget.tokens is not None and estimate.tokens > budget.tokens:
        raise ValueError(f"estimate: tokens {estimate.tokens} is over the budget's {budget.tokens}")


class UsageSums(BaseModel):
    """Spend summed over some reports (tokens = input + output)."""

    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    tokens: int = 0
    reports: int = 0


class UsageRow(UsageSums):
    key: str | None  # the agent, workflow, run, model or day (None: not known, e.g. no model given)
    name: str | None = None  # an agent's name, a run's workflow


class UsageReport(BaseModel):
    by: str
    since: datetime | None = None
    rows: list[UsageRow]
    total: UsageSums


class ResumeRequest(Strict):
    """`hivectl workflow resume RUN [--add-budget COST] [--add-tokens N]`."""

    add_budget: Cost | None = Field(default=None, ge=0, le=MAX_COST_USD, strict=True, allow_inf_nan=False)
    add_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS, strict=True)


class BudgetState(BaseModel):
    """A budget with what was spent under it and what is left (None: no limit of that kind)."""

    cost_usd: float | None = None
    tokens: int | None = None
    on_exceed: str = "fail"
    spent: UsageSums = Field(default_factory=UsageSums)
    left_cost_usd: float | None = None
    left_tokens: int | None = None
    exceeded: bool = False
