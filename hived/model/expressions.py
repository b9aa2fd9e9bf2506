"""CEL expressions (`success_when`, workflow `when` and `${{ }}`), through the cel-python library:
parsed and evaluated as CEL, never by Python's eval. The library and its environment are loaded on the
first expression (a quarter of a second), not on import: a CLI that only prints does not pay for it.

Every evaluation has a budget of MAX_STEPS steps (one step: one node of the expression visited, so a
macro like `l.all(x, ...)` spends its body's nodes once per element). Expressions run where hived
decides (on its event loop): without a bound, `l.all(x, l.all(y, x + y >= 0))` over a param of 1,000
numbers would stop hived for minutes. Past the budget the evaluation stops with an ExpressionError,
which fails the step or attempt with that message. Steps rather than a clock: the same expression over
the same data passes or fails the same way on a loaded machine and an idle one."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import celpy


MAX_STEPS = 10_000  # about 10-100 ms of CPU for cel-python's interpreter (~5-12 us a step)
PAUSE_EVERY = 25  # steps between two calls of `pause_hook` (about 0.1-1 ms)
# Called every PAUSE_EVERY steps of an evaluation: hived.slices sets it, so that an evaluation run
# through `sliced` lets the event loop serve others meanwhile. Elsewhere it does nothing.
pause_hook: Callable[[], None] | None = None


class ExpressionError(ValueError):
    """A CEL expression that does not parse or cannot be evaluated; the message says where."""


class _OverBudget(Exception):  # noqa: N818 - internal; not a ValueError/TypeError, so celpy does not catch it
    """Raised inside celpy's evaluator once the budget is spent (and at every later step)."""


class Budget:
    """Steps left; one per evaluation by default, or shared by several (a payload's templates)."""

    __slots__ = ("left",)

    def __init__(self, steps: int = MAX_STEPS) -> None:
        self.left = steps


@functools.cache
def _runner_class() -> type:
    """An InterpretedRunner whose evaluator (and the sub-evaluators of macros) share one budget.
    lark's Interpreter sends every node through `_visit_tree`: the one place to count."""
    import celpy
    from celpy.evaluation import Evaluator

    class BudgetEvaluator(Evaluator):
        def __init__(self, ast: Any, activation: Any, budget: Budget) -> None:
            super().__init__(ast, activation)
            self.budget = budget

        def _visit_tree(self, tree: Any) -> Any:
            self.budget.left -= 1
            if self.budget.left < 0:
                raise _OverBudget
            if self.budget.left % PAUSE_EVERY == 0 and pause_hook is not None:
                pause_hook()
            return super()._visit_tree(tree)

        def sub_evaluator(self, ast: Any) -> BudgetEvaluator:
            return BudgetEvaluator(ast, self.activation, self.budget)

    class BudgetRunner(celpy.InterpretedRunner):
        def evaluate_within(self, context: dict[str, Any], budget: Budget) -> Any:
            return BudgetEvaluator(self.ast, self.new_activation(), budget).evaluate(context)

    return BudgetRunner


@functools.cache
def _environment() -> celpy.Environment:
    import celpy

    return celpy.Environment(runner_class=_runner_class())


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


class _Count:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


def _to_cel(value: Any, count: _Count) -> Any:
    """celpy's json_to_cel, calling `pause_hook` every PAUSE_EVERY containers' items (a param of
    thousands of numbers is converted in slices too)."""
    import celpy
    from celpy import celtypes

    if isinstance(value, list | tuple | dict):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        out = {}
        for key, item in items:
            count.n += 1
            if count.n % PAUSE_EVERY == 0 and pause_hook is not None:
                pause_hook()
            out[key] = _to_cel(item, count)
        if isinstance(value, dict):
            return celtypes.MapType({celpy.json_to_cel(k): v for k, v in out.items()})
        return celtypes.ListType(list(out.values()))
    return celpy.json_to_cel(value)


def evaluate(text: str, variables: dict[str, Any], budget: Budget | None = None) -> Any:
    """Evaluate `text` with JSON-like `variables`; raises ExpressionError on any failure, also once
    `budget` (by default MAX_STEPS for this evaluation alone) is spent."""

    program = compile_expression(text)
    budget = budget or Budget(MAX_STEPS)
    try:
        activation = {name: _to_cel(value, _Count()) for name, value in variables.items()}
        value = program.evaluate_within(activation, budget)
        if budget.left < 0:  # spent, and the error turned into a value by `||` or a macro
            raise _OverBudget
        return to_python(value)
    except ExpressionError:
        raise
    except _OverBudget:
        raise ExpressionError(f"{text!r} exceeded the evaluation budget ({MAX_STEPS} steps)") from None
    except Exception as exc:  # celpy raises CELEvalError and friends, sometimes returns them
        raise ExpressionError(f"cannot evaluate {text!r}: {exc.args[0] if exc.args else exc}") from None


def is_true(text: str, variables: dict[str, Any]) -> bool:
    value = evaluate(text, variables)
    if not isinstance(value, bool):
        raise ExpressionError(f"{text!r} gave {value!r}, not true or false")
    return value
