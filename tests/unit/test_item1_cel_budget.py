"""Item 1 of the hardening issue: CEL without a cost bound froze hived (a quadratic `when:` over a run
param ran for minutes on the event loop). Every evaluation now has a budget of steps."""

import pytest

from hived.model import expressions
from hived.model.expressions import ExpressionError, evaluate, is_true

QUADRATIC = "params.l.all(x, params.l.all(y, x + y >= 0))"


@pytest.mark.timeout(60)  # generous: without the budget this runs for many seconds, then passes wrongly
def test_item1_quadratic_when_exceeds_the_budget() -> None:
    with pytest.raises(ExpressionError, match=r"exceeded the evaluation budget \(\d+ steps\)"):
        is_true(QUADRATIC, {"params": {"l": list(range(300))}})


@pytest.mark.timeout(60)
def test_item1_budget_is_not_swallowed_by_short_circuit() -> None:
    """`||` and `exists` turn errors into values in celpy; the exhausted budget still fails."""
    for expr in (f"({QUADRATIC}) || true", f"true && ({QUADRATIC})", f"params.l.exists(z, {QUADRATIC})"):
        with pytest.raises(ExpressionError, match="evaluation budget"):
            evaluate(expr, {"params": {"l": list(range(300))}})


def test_item1_cheap_expressions_pass() -> None:
    assert is_true("params.l.all(x, x >= 0)", {"params": {"l": list(range(200))}}) is True
    assert is_true(QUADRATIC, {"params": {"l": list(range(10))}}) is True
    assert evaluate("size(params.l)", {"params": {"l": list(range(100_000))}}) == 100_000


def test_item1_budget_is_per_evaluation() -> None:
    """One evaluation's spending does not carry over to the next (the program is cached)."""
    variables = {"params": {"l": list(range(150))}}
    for _ in range(20):
        assert is_true("params.l.all(x, x >= 0)", variables) is True


def test_item1_budget_is_a_documented_constant() -> None:
    assert isinstance(expressions.MAX_STEPS, int) and 1_000 <= expressions.MAX_STEPS <= 100_000


def test_item1_templates_of_one_payload_share_the_budget() -> None:
    """Thousands of templates, each under the budget, must not add up to minutes on hived's loop."""
    from hived.workflows.templates import render

    variables = {"params": {"l": list(range(100))}}
    one = "${{ params.l.all(x, x >= 0) }}"
    assert render({"a": one}, variables) == {"a": True}
    with pytest.raises(ExpressionError, match="evaluation budget"):
        render({"many": [one] * 20}, variables)
    with pytest.raises(ExpressionError, match="evaluation budget"):
        render({"spliced": " ".join([one] * 20)}, variables)
