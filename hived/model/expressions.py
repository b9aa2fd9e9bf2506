"""CEL expressions (`success_when`, workflow `when` and `${{ }}`), through the cel-python library:
parsed and evaluated as CEL, never by Python's eval. The library and its environment are loaded on the
first expression (a quarter of a second), not on import: a CLI that only prints does not pay for it."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import celpy


class ExpressionError(ValueError):
    """A CEL expression that does not parse or cannot be evaluated; the message says where."""


@functools.cache
def _environment() -> celpy.Environment:
    import celpy

    return celpy.Environment()


@functools.lru_cache(maxsize=1024)
def compile_expression(text: str) -> celpy.Runner:
    import celpy

    env = _environment()
    try:
        return env.program(env.compile(text))
    except celpy.CELParseError as exc:
        detail = " ".join(str(exc).split())
        raise ExpressionError(f"CEL syntax error in {text!r}: {detail}") from None


def check_syntax(text: str) -> None:
    compile_expression(text)


def to_python(value: Any) -> Any:
    """CEL values back to plain JSON-able Python values."""
    from celpy import celtypes

    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.MapType):
        return {str(to_python(k)): to_python(v) for k, v in value.items()}
    if isinstance(value, celtypes.ListType):
        return [to_python(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def evaluate(text: str, variables: dict[str, Any]) -> Any:
    """Evaluate `text` with JSON-like `variables`; raises ExpressionError on any failure."""
    import celpy

    program = compile_expression(text)
    try:
        activation = {name: celpy.json_to_cel(value) for name, value in variables.items()}
        return to_python(program.evaluate(activation))
    except ExpressionError:
        raise
    except Exception as exc:  # celpy raises CELEvalError and friends, sometimes returns them
        raise ExpressionError(f"cannot evaluate {text!r}: {exc.args[0] if exc.args else exc}") from None


def is_true(text: str, variables: dict[str, Any]) -> bool:
    value = evaluate(text, variables)
    if not isinstance(value, bool):
        raise ExpressionError(f"{text!r} gave {value!r}, not true or false")
    return value
