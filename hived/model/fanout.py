"""`for_each` steps (dynamic fan-out), as rules: the shape of a step that fans out, which expressions
may use `item` and `index`, and what a `for_each` must give at run time (a list of at most MAX_ITEMS).
The engine's side is hived.workflows.fanout."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_ITEMS = 10_000  # items of one fan-out: as many tasks, made as the items' turns come
ITEM_NAMES = ("item", "index")
# `item` or `index` as a name of its own, not a field (`steps.x.result.index` is a field)
ITEM_RE = re.compile(r"(?<![\w.])(item|index)\b")
TEMPLATE_ONLY_RE = re.compile(r"^\s*\$\{\{.*\}\}\s*$", re.DOTALL)


def shape_problem(fields: Mapping[str, Any]) -> str | None:
    """Why a step's `for_each` and `max_parallel` cannot be, or None (`fields`: the step's fields)."""
    for_each, max_parallel = fields.get("for_each"), fields.get("max_parallel")
    if for_each is None:
        return "max_parallel needs for_each" if max_parallel is not None else None
    if isinstance(for_each, str) and not TEMPLATE_ONLY_RE.match(for_each):
        return 'for_each must be one "${{ expression }}" that gives a list, or a list'
    if isinstance(for_each, list) and len(for_each) > MAX_ITEMS:
        return f"for_each has {len(for_each)} items (at most {MAX_ITEMS})"
    return None


def item_problem(step: Mapping[str, Any], where: str, expression: str) -> str | None:
    """Why `expression` (at the step's field `where`) may not use `item`/`index`, or None."""
    if not ITEM_RE.search(_without_strings(expression)):
        return None
    if step.get("for_each") is None:
        return "uses item or index, which only a step with for_each has"
    if where in ("for_each", "when"):
        return f"{where} cannot use item or index (it is evaluated once, before the items)"
    return None


def _without_strings(expression: str) -> str:
    return re.sub(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", "''", expression)


def items_of(value: Any) -> list[Any]:
    """The items a rendered `for_each` gave; ValueError saying what it gave instead of a list."""
    if not isinstance(value, list):
        what = "null" if value is None else type(value).__name__
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        kind = {"dict": "map", "str": "string", "int": "number", "float": "number", "bool": "boolean"}
        raise ValueError(f"for_each gave a {kind.get(what, what)} ({shown}), not a list")
    if len(value) > MAX_ITEMS:
        raise ValueError(f"for_each gave {len(value)} items (at most {MAX_ITEMS})")
    return value


def item_variables(item: Any, index: int) -> dict[str, Any]:
    return {"item": item, "index": index}
