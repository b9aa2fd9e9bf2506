"""The budget flags of `hivectl task submit`: `--budget-usd 5 --budget-tokens 200000` (the task fails
when its attempts spend more; it is not retried) and `--estimate-usd/--estimate-tokens` (refused at
submit when it does not fit in what is left of the daemon's budget for the day)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

BudgetUsdOpt = Annotated[
    float | None,
    typer.Option("--budget-usd", min=0, help="fail the task once its attempts spent more dollars"),
]
BudgetTokensOpt = Annotated[
    int | None,
    typer.Option("--budget-tokens", min=0, help="fail the task once its attempts used more tokens"),
]
EstimateUsdOpt = Annotated[
    float | None, typer.Option("--estimate-usd", min=0, help="what it expects to spend")
]
EstimateTokensOpt = Annotated[
    int | None, typer.Option("--estimate-tokens", min=0, help="tokens it expects to use")
]


def pair(cost_usd: float | None, tokens: int | None) -> dict[str, Any] | None:
    """`{cost_usd, tokens}` of the flags given, or None (the field is left out)."""
    given = {"cost_usd": cost_usd, "tokens": tokens}
    return {key: value for key, value in given.items() if value is not None} or None
