"""What a JSON value may hold when hived stores it (payloads, params, results, context values):
text that is valid Unicode without NUL (PostgreSQL refuses NUL, and a lone surrogate cannot be encoded),
finite numbers (NaN and Infinity are not JSON), and at most MAX_JSON_DEPTH levels of nesting (a deep
value is refused at the door, not found unreadable later). Pure: the schemas and hived's bounds use it."""

from __future__ import annotations

import math
from typing import Any

MAX_JSON_DEPTH = 64


def json_problem(value: Any, where: str = "") -> str | None:
    """Why `value` cannot be stored, naming the path inside it (`a.b[2]`), or None. Iterative: a deep
    value cannot exhaust the stack."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, str):
            if problem := text_problem(item):
                return f"{path or 'value'}: {problem}"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{path or 'value'}: {item} is not a JSON number"
        elif isinstance(item, dict):
            for key, child in item.items():
                if problem := text_problem(str(key)):
                    return f"{path or 'value'}: a key {problem}"
                stack.append((child, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
    return None


def text_problem(text: str) -> str | None:
    """Why this text cannot be stored (NUL, a lone surrogate), or None."""
    if "\x00" in text:
        return "holds NUL (\\u0000), which hived does not store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds {text[exc.start]!r}, a lone surrogate that is not text"
    return None


def check_json(value: Any) -> Any:
    """A pydantic after-validator: the value, or ValueError saying where it breaks the rules."""
    if (problem := json_problem(value)) is not None:
        raise ValueError(problem)
    return value


def check_text(value: str | None) -> str | None:
    if value is not None and (problem := text_problem(value)) is not None:
        raise ValueError(problem)
    return value
