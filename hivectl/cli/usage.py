"""`hivectl usage [--by agent|workflow|run|model|day|task] [--since 24h]`: what handlers reported they
spent; and how usage and budgets read in the other views (`task show`, `workflow status`, `agent
show`, the dashboard)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hivectl.cli.common import OutputOpt, client
from hivectl.cli.output import Output, emit

if TYPE_CHECKING:
    from rich.console import RenderableType

    from hived.model.usage import UsageReport

BY = ("agent", "workflow", "run", "model", "day", "task")


def cost(usd: float | None) -> str:
    """`$1.20`, or more digits for small sums (`$0.000150`)."""
    if usd is None:
        return "-"
    return f"${usd:.2f}" if round(usd, 2) == round(usd, 6) else f"${usd:.6f}".rstrip("0")


def usage_text(sums: Mapping[str, Any] | None) -> str:
    """`$0.30, 900 tokens (450 in, 450 out), 3 reports`; `-` when nothing was reported."""
    if not sums or not sums.get("reports"):
        return "-"
    tokens = f"{sums['tokens']} tokens ({sums['input_tokens']} in, {sums['output_tokens']} out)"
    return f"{cost(sums['cost_usd'])}, {tokens}, {sums['reports']} reports"


def budget_text(budget: Mapping[str, Any] | None) -> str:
    """`$1.00 and 5000 tokens, on_exceed pause: spent $1.20, left $0.00 (exceeded)`."""
    if not budget:
        return "-"
    limits = [cost(budget["cost_usd"])] if budget.get("cost_usd") is not None else []
    limits += [f"{budget['tokens']} tokens"] if budget.get("tokens") is not None else []
    spent = budget.get("spent") or {}
    left = [cost(budget["left_cost_usd"])] if budget.get("left_cost_usd") is not None else []
    left += [f"{budget['left_tokens']} tokens"] if budget.get("left_tokens") is not None else []
    text = f"{' and '.join(limits)}, on_exceed {budget.get('on_exceed', 'fail')}"
    if spent.get("reports") is not None:
        text += f": spent {cost(spent.get('cost_usd', 0))}, left {' and '.join(left) or '-'}"
    return text + (" (exceeded)" if budget.get("exceeded") else "")


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
