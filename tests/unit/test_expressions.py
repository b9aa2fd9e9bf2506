import pytest

from hived.model.expressions import ExpressionError, check_syntax, evaluate, is_true


@pytest.mark.parametrize(
    ("expr", "variables", "expected"),
    [
        ("result.files_changed > 0", {"result": {"files_changed": 2}}, True),
        ("result.files_changed > 0", {"result": {"files_changed": 0}}, False),
        (
            "result.passed == true && result.coverage >= 0.8",
            {"result": {"passed": True, "coverage": 0.9}},
            True,
        ),
        ("size(result.items) == 2", {"result": {"items": [1, 2]}}, True),
        ("'ok' in result.tags", {"result": {"tags": ["ok"]}}, True),
    ],
)
def test_is_true(expr: str, variables: dict, expected: bool) -> None:
    assert is_true(expr, variables) is expected


def test_values_come_back_as_python() -> None:
    assert evaluate("params.n * 2", {"params": {"n": 21}}) == 42
    assert evaluate("{'a': [1, 'x']}", {}) == {"a": [1, "x"]}


@pytest.mark.parametrize("bad", ["result.x >", "((", "a ? b"])
def test_syntax_errors(bad: str) -> None:
    with pytest.raises(ExpressionError, match="CEL syntax error"):
        check_syntax(bad)


def test_missing_field_is_an_error_not_a_crash() -> None:
    with pytest.raises(ExpressionError, match="files_changed"):
        is_true("result.files_changed > 0", {"result": {}})


def test_non_boolean_condition() -> None:
    with pytest.raises(ExpressionError, match="not true or false"):
        is_true("1 + 1", {})


def test_no_python_eval() -> None:
    with pytest.raises(ExpressionError):
        evaluate("__import__('os').system('true')", {})
