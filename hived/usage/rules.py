"""The rules of usage and budgets, pure and table-tested: reading a result's `usage`, when a budget is
exceeded, whether an estimate fits in what is left, and how that reads for an operator.

A budget is exceeded when what was spent under it is over one of its limits (`cost_usd`, or
`tokens` = input + output tokens). An estimate fits when, for each limit, estimate <= what is left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hived.model.usage import Budget, BudgetState, Estimate, UsageSums, to_micro, to_usd


@dataclass(frozen=True)
class Spent:
    """Spend in hived's units: micro-USD and tokens (input + output)."""

    micro: int = 0
    tokens: int = 0

    def sums(self, input_tokens: int = 0, output_tokens: int = 0, reports: int = 0) -> UsageSums:
        return UsageSums(
            cost_usd=to_usd(self.micro),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tokens=self.tokens,
            reports=reports,
        )


@dataclass(frozen=True)
class Limit:
    """A budget in hived's units, with what was added to it (`workflow resume --add-budget`)."""

    micro: int | None
    tokens: int | None
    on_exceed: str = "fail"

    @classmethod
    def of(cls, budget: Budget | dict[str, Any], added_micro: int = 0, added_tokens: int = 0) -> Limit:
        b = budget if isinstance(budget, Budget) else Budget.model_validate(budget)
        micro = None if b.cost_usd is None else to_micro(b.cost_usd) + added_micro
        tokens = None if b.tokens is None else b.tokens + added_tokens
        return cls(micro, tokens, b.on_exceed)


def over(limit: Limit, spent: Spent) -> str | None:
    """Which limit `spent` is over (`cost $1.20 of $1.00`), or None."""
    if limit.micro is not None and spent.micro > limit.micro:
        return f"cost {money(spent.micro)} of {money(limit.micro)}"
    if limit.tokens is not None and spent.tokens > limit.tokens:
        return f"tokens {spent.tokens} of {limit.tokens}"
    return None


def misfit(limit: Limit, spent: Spent, estimate: Estimate | dict[str, Any] | None) -> str | None:
    """Why an estimate does not fit in what is left (`estimate $0.40, left $0.20`), or None."""
    if estimate is None:
        return None
    e = estimate if isinstance(estimate, Estimate) else Estimate.model_validate(estimate)
    if e.cost_usd is not None and limit.micro is not None:
        left = limit.micro - spent.micro
        if to_micro(e.cost_usd) > left:
            return f"estimate {money(to_micro(e.cost_usd))}, left {money(max(0, left))}"
    if e.tokens is not None and limit.tokens is not None:
        left = limit.tokens - spent.tokens
        if e.tokens > left:
            return f"estimate {e.tokens} tokens, left {max(0, left)}"
    return None


def state(limit: Limit, spent: Spent, sums: UsageSums) -> BudgetState:
    """The budget as `task show`, `workflow status` and `agent show` present it."""
    return BudgetState(
        cost_usd=None if limit.micro is None else to_usd(limit.micro),
        tokens=limit.tokens,
        on_exceed=limit.on_exceed,
        spent=sums,
        left_cost_usd=None if limit.micro is None else to_usd(max(0, limit.micro - spent.micro)),
        left_tokens=None if limit.tokens is None else max(0, limit.tokens - spent.tokens),
        exceeded=over(limit, spent) is not None,
    )


def money(micro: int) -> str:
    """`$1.20`, with more digits only when they matter (`$0.000150`)."""
    usd = micro / 1_000_000
    return f"${usd:.2f}" if micro % 10_000 == 0 else f"${usd:.6f}".rstrip("0")


def day_of(moment: datetime) -> str:
    """The UTC day a report counts toward (agents' and the daemon's budgets are per day)."""
    return moment.strftime("%Y-%m-%d")


def next_day(moment: datetime) -> float:
    """Seconds from `moment` (UTC) to the next UTC midnight, when per-day budgets start again."""
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6
    return 86400 - seconds
