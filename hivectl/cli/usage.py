"""`hivectl usage [--by agent|workflow|run|model|day|task] [--since 24h]`: what handlers reported they
spent; and how usage and budgets read in the other views (`task show`, `workflow status`, `agent
show`, the dashboard)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hivectl.cli.common import OutputOpt, client
from hivectl.cli.output import Output, emit
from hivectl.cli.spend import cost

if TYPE_CHECKING:
    from rich.console import RenderableType

    from hived.model.usage import UsageReport

BY = ("agent", "workflow", "run", "model", "day", "task")


def usage_table(report: UsageReport) -> RenderableType:
    from rich.text import Text

    from hivectl.cli import render

    table = render.grid([report.by.upper(), "COST", "TOKENS", "INPUT", "OUTPUT", "REPORTS"])
    for row in [*report.rows, None]:
        sums = report.total if row is None else row
        label = "TOTAL" if row is None else (row.name or row.key or "-")
        if row is not None and report.by == "run" and row.key:
            label = f"{row.key[:8]} ({row.name})" if row.name else row.key[:8]
        table.add_row(
            Text(label, style="bold" if row is None else ""),
            cost(sums.cost_usd),
            str(sums.tokens),
            str(sums.input_tokens),
            str(sums.output_tokens),
            str(sums.reports),
        )
    return table


def usage(
    ctx: typer.Context,
    by: Annotated[str, typer.Option("--by", help=f"sum per: {', '.join(BY)}")] = "agent",
    since: Annotated[
        str | None, typer.Option("--since", help="only what was reported in this last while, like 24h")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """What handlers reported they spent (dollars and tokens), summed per agent, workflow, run, model,
    day or task, with the total."""
    report = client(ctx).usage(by, since)
    emit(report, output, lambda: usage_table(report))
