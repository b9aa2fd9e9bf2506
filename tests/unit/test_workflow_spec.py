"""Workflow parameters, payload templates and the rules of the Workflow document (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hived.model.expressions import ExpressionError
from hived.model.workflow import ParamError, WorkflowSpec, coerce_params, describe, graph_errors
from hived.workflows.templates import render

DEFAULTS = {"n": 1, "ratio": 0.5, "dry": False, "env": "dev", "tags": ["a"], "opts": {"x": 1}, "req": None}


@pytest.mark.parametrize(
    ("given", "key", "expected"),
    [
        ({"n": "3", "req": "r"}, "n", 3),
        ({"n": 4, "req": "r"}, "n", 4),
        ({"ratio": "2.5", "req": "r"}, "ratio", 2.5),
        ({"dry": "true", "req": "r"}, "dry", True),
        ({"dry": "off", "req": "r"}, "dry", False),
        ({"env": "42", "req": "r"}, "env", "42"),  # a string default keeps strings as they are
        ({"tags": '["b", "c"]', "req": "r"}, "tags", ["b", "c"]),
        ({"opts": '{"y": 2}', "req": "r"}, "opts", {"y": 2}),
        ({"req": "7"}, "req", "7"),
        ({"req": "r"}, "env", "dev"),
    ],
)
def test_params_take_the_type_of_their_default(given: dict[str, Any], key: str, expected: Any) -> None:
    assert coerce_params(DEFAULTS, given)[key] == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"req": "r", "m": "1"}, "unknown param 'm'"),
        ({}, "param 'req' is required"),
        ({"req": "r", "n": "three"}, "param 'n': 'three' is not an integer"),
        ({"req": "r", "dry": "maybe"}, "param 'dry': 'maybe' is not a boolean"),
        ({"req": "r", "tags": "a,b"}, "param 'tags': expected a JSON list"),
        ({"req": "r", "opts": "[1]"}, "param 'opts': expected a JSON dict"),
    ],
)
def test_bad_params_are_refused_by_name(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamError, match=message):
        coerce_params(DEFAULTS, given)


VARS = {
    "params": {"n": 2, "name": "hive", "on": True},
    "steps": {"a": {"status": "succeeded", "result": {"l": [1]}}},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${{ params.n }}", 2),  # exactly one expression: the value keeps its type
        ("  ${{ params.n * 10 }} ", 20),
        ("${{ steps.a.result.l }}", [1]),
        ("n=${{ params.n }}", "n=2"),
        ("${{ params.name }}-${{ params.n }}", "hive-2"),
        ("on=${{ params.on }} l=${{ steps.a.result.l }}", "on=true l=[1]"),
        ({"k": ["${{ params.n + 1 }}", "plain"]}, {"k": [3, "plain"]}),
        (5, 5),
    ],
)
def test_render(template: Any, expected: Any) -> None:
    assert render(template, VARS) == expected


def test_render_names_what_failed() -> None:
    with pytest.raises(ExpressionError, match="steps.a.result.missing"):
        render("${{ steps.a.result.missing }}", VARS)


def spec(**fields: Any) -> WorkflowSpec:
    return WorkflowSpec.model_validate({"name": "wf", **fields})


def test_graph_errors_are_described_by_path() -> None:
    wf = spec(steps=[{"id": "a", "type": "t", "needs": ["zz"]}])
    assert [describe(e) for e in graph_errors(wf)] == ["steps[0].needs[0]: step 'a' needs unknown step 'zz'"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"steps": [{"id": "gate", "type": "approval", "requires": ["x"]}]}, "an approval step waits"),
        ({"steps": [{"id": "a-b", "type": "t"}]}, "must be 1-63 letters"),
        ({"params": {"bad-name": 1}, "steps": [{"id": "a", "type": "t"}]}, "param name 'bad-name'"),
        ({"steps": [{"id": "a", "type": "t", "timeout": "soon"}]}, "is not a duration"),
        ({"steps": [{"id": "a", "type": "t", "retry": {"max_attempts": 0}}]}, "greater than or equal to 1"),
    ],
)
def test_document_rules(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**fields)


def test_equal_documents_have_equal_definitions() -> None:
    a = spec(steps=[{"id": "a", "type": "t", "timeout": "1m"}])
    b = spec(steps=[{"id": "a", "type": "t", "timeout": 60}])
    assert a.definition() == b.definition()
