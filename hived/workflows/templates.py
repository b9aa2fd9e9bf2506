"""`${{ expr }}` in step payloads: each expression is CEL over the run's variables (params, steps).
A string that is exactly one `${{ expr }}` keeps the value's type; otherwise values are spliced into
the string (maps and lists as JSON). All the templates of one payload share one evaluation budget
(MAX_STEPS): a payload of thousands of costly templates costs no more than one."""

from __future__ import annotations

import json
from typing import Any

from hived.model.expressions import Budget, ExpressionError, evaluate
from hived.model.graph import TEMPLATE_RE


def render(value: Any, variables: dict[str, Any], budget: Budget | None = None) -> Any:
    """`value` with every template evaluated; raises ExpressionError naming the expression."""
    budget = budget or Budget()
    if isinstance(value, str):
        whole = TEMPLATE_RE.fullmatch(value.strip())
        if whole and value.strip().count("${{") == 1:
            return evaluate(whole.group(1), variables, budget)
        return TEMPLATE_RE.sub(lambda m: _splice(evaluate(m.group(1), variables, budget)), value)
    if isinstance(value, dict):
        return {key: render(item, variables, budget) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, variables, budget) for item in value]
    return value


def _splice(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


__all__ = ["ExpressionError", "render"]
