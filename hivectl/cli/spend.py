"""Dollars, tokens and budgets as hivectl's tables, `task show`, `workflow status`, `agent show` and
the dashboard write them. Plain text, no rich."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
