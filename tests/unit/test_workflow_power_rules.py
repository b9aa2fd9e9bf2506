"""The pure rules of for_each and sub-workflows, as tables: what a for_each must give, where `item`
may be used, cycles through sub-workflows, the params a child gets, and the order to apply in."""

from __future__ import annotations

from typing import Any

import pytest

from hived.model.documents import load_documents
from hived.model.fanout import MAX_ITEMS, item_problem, items_of
from hived.model.subflows import cycle, param_problem
from hived.model.workflow_refs import apply_order


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ([1, 2], None),
        ([], None),
        ({"files": []}, "for_each gave a map ({'files': []}), not a list"),
        ("a.py", "for_each gave a string ('a.py'), not a list"),
        (None, "for_each gave a null (None), not a list"),
        (3, "for_each gave a number (3), not a list"),
        (list(range(MAX_ITEMS + 1)), f"for_each gave {MAX_ITEMS + 1} items (at most {MAX_ITEMS})"),
    ],
)
def test_items_of(value: Any, error: str | None) -> None:
    if error is None:
        assert items_of(value) == value
    else:
        with pytest.raises(ValueError) as raised:
            items_of(value)
        assert str(raised.value) == error


FAN = {"for_each": "${{ steps.l.result }}"}
ONCE = " (it is evaluated once, before the items)"


@pytest.mark.parametrize(
    ("step", "where", "expression", "problem"),
    [
        (FAN, "payload", "item", None),
        (FAN, "payload", "index + 1", None),
        (FAN, "payload", "item.name + '-' + string(index)", None),
        (FAN, "payload", "steps.l.result.index", None),  # a field named index
        (FAN, "payload", "'item'", None),  # a string
        ({}, "payload", "item", "uses item or index, which only a step with for_each has"),
        (FAN, "for_each", "item", "for_each cannot use item or index" + ONCE),
        (FAN, "when", "index == 0", "when cannot use item or index" + ONCE),
    ],
)
def test_item_problem(step: dict[str, Any], where: str, expression: str, problem: str | None) -> None:
    assert item_problem(step, where, expression) == problem


@pytest.mark.parametrize(
    ("name", "runs", "found"),
    [
        ("a", {"a": ["b"], "b": []}, None),
        ("a", {"a": ["a"]}, ["a", "a"]),
        ("a", {"a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
        ("a", {"a": ["b", "c"], "b": [], "c": ["b"]}, None),  # a diamond is no cycle
        ("a", {"a": ["b"], "b": ["c"], "c": ["b"]}, None),  # not through a (stored ones have none)
    ],
)
def test_cycle(name: str, runs: dict[str, list[str]], found: list[str] | None) -> None:
    assert cycle(name, runs) == found


@pytest.mark.parametrize(
    ("given", "declared", "problem"),
    [
        ({"path": "x"}, {"path": None, "n": 1}, None),
        ({}, {"n": 1}, None),
        ({"nope": 1}, {"path": None}, "workflow 'c' has no param 'nope' (its params: path)"),
        ({}, {"path": None}, "workflow 'c' needs param 'path' (it has no default)"),
    ],
)
def test_param_problem(given: dict[str, Any], declared: dict[str, Any], problem: str | None) -> None:
    assert param_problem(given, declared, "c") == problem


def test_apply_order_puts_sub_workflows_first_and_keeps_other_documents_in_place() -> None:
    text = (
        "kind: Workflow\nname: top\nsteps:\n  - {id: a, workflow: mid}\n---\n"
        'kind: Agent\nname: w\nhandler: {exec: ["true"]}\n---\n'
        "kind: Workflow\nname: mid\nsteps:\n  - {id: a, workflow: leaf}\n---\n"
        "kind: Workflow\nname: leaf\nsteps:\n  - {id: a, type: t}\n"
    )
    documents = load_documents(text, "f.yaml")
    assert [doc.names[0] for doc in apply_order(documents)] == ["leaf", "mid", "top", "w"]
