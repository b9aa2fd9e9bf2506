import pytest

from hived.model.graph import Node, find_cycle, validate
from hived.model.states import StepStatus
from hived.workflows.rules import next_moves, run_outcome

S = StepStatus


def step(id: str, needs: list[str] | None = None, **kw: object) -> dict[str, object]:
    return {"id": id, "needs": needs or [], **kw}


def test_cycle_is_named() -> None:
    assert find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]}) in (
        ["a", "c", "b", "a"],
        ["c", "b", "a", "c"],
        ["b", "a", "c", "b"],
    )
    assert find_cycle({"a": [], "b": ["a"]}) is None


@pytest.mark.parametrize(
    ("steps", "params", "path", "fragment"),
    [
        ([step("a"), step("a")], [], ("steps", 1, "id"), "duplicate step id 'a'"),
        ([step("a", ["ghost"])], [], ("steps", 0, "needs", 0), "unknown step 'ghost'"),
        ([step("a", ["b"]), step("b", ["a"])], [], ("steps", 0, "needs"), "dependency cycle: a -> b -> a"),
        ([step("a", when="params.x >")], ["x"], ("steps", 0, "when"), "CEL syntax error"),
        ([step("a", when="params.y == 1")], ["x"], ("steps", 0, "when"), "unknown param 'y'"),
        (
            [step("a", payload={"v": ["${{ params.nope }}"]})],
            [],
            ("steps", 0, "payload", "v", 0),
            "unknown param 'nope'",
        ),
        (
            [step("a"), step("b", payload={"x": "${{ steps.a.result.x }}"})],
            [],
            ("steps", 1, "payload", "x"),
            "does not need it",
        ),
    ],
)
def test_validation_errors(steps: list, params: list, path: tuple, fragment: str) -> None:
    errors = validate(steps, params)
    assert errors, "expected an error"
    assert errors[0].path == path and fragment in errors[0].message


def test_valid_graph_with_transitive_reference() -> None:
    steps = [step("a"), step("b", ["a"]), step("c", ["b"], when="steps.a.result.ok == true")]
    assert validate(steps, []) == []


NODES = [
    Node("build", ()),
    Node("lint", (), continue_on_failure=True),
    Node("test", ("build",)),
    Node("deploy", ("test", "lint")),
]


def test_parallel_start_and_progress() -> None:
    assert next_moves(NODES, {}) == (["build", "lint"], [])
    state = {"build": S.SUCCEEDED, "lint": S.RUNNING}
    assert next_moves(NODES, state) == (["test"], [])
    state = {"build": S.SUCCEEDED, "lint": S.FAILED, "test": S.SUCCEEDED}
    assert next_moves(NODES, state) == (["deploy"], [])  # lint may fail
    assert run_outcome(NODES, state) is None


def test_skip_propagates_and_failure_fails_the_run() -> None:
    state = {"build": S.SUCCEEDED, "lint": S.SUCCEEDED, "test": S.SKIPPED}
    assert next_moves(NODES, state) == ([], ["deploy"])
    failed = {"build": S.FAILED, "lint": S.RUNNING}
    assert run_outcome(NODES, failed) == "failed"
    assert next_moves(NODES, failed) == ([], ["test"])


def test_all_final_succeeds() -> None:
    state = dict.fromkeys(["build", "lint", "test"], S.SUCCEEDED) | {"deploy": S.SKIPPED}
    assert run_outcome(NODES, state) == "succeeded"
