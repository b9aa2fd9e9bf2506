"""The pure rules of waiting steps and rework loops, as tables: which fields a waiting step takes,
what its time running out means, which steps a rework runs again, and `steps.<gate>.comment`
accepted before the gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from hived.model.documents import DocumentError, load_documents
from hived.model.waits import time_up, wait_kind, wakes_at
from hived.model.workflow import StepSpec, WorkflowSpec, graph_errors
from hived.workflows.approvals import ReworkRefused, downstream, rework_plan

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sleep": "1m", "wait_for": {"signal": "ci"}}, "one of sleep or wait_for"),
        ({"sleep": "1m", "type": "t"}, "a sleep step runs no task: no type"),
        ({}, "type: required"),
        ({"sleep": "1m", "payload": {"a": 1}}, "no payload"),
        ({"wait_for": {"signal": "ci"}, "requires": ["x"]}, "a wait_for step runs no task"),
        ({"sleep": "1m", "timeout": "1h"}, "no timeout of its own"),
        ({"type": "t", "on_timeout": "reject"}, "on_timeout is for an approval step with a timeout"),
        ({"type": "approval", "on_timeout": "approve"}, "on_timeout is for an approval step with a timeout"),
        ({"type": "approval", "timeout": "1h", "on_timeout": "maybe"}, "'reject' or 'approve'"),
        ({"wait_for": {"signal": "no spaces"}}, "letters, digits"),
        ({"wait_for": {"signal": "ci", "colour": 1}}, "Extra inputs"),
        ({"sleep": "forever"}, "not a duration"),
        ({"type": "approval", "max_rework": -1}, "greater than or equal to 0"),
    ],
)
def test_bad_waiting_steps_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StepSpec.model_validate({"id": "s", **fields})


@pytest.mark.parametrize(
    ("fields", "kind", "wakes"),
    [
        ({"sleep": "10m"}, "sleep", 600),
        ({"wait_for": {"signal": "ci", "timeout": "2h"}}, "signal", 7200),
        ({"wait_for": {"signal": "ci"}}, "signal", None),
        ({"type": "approval", "timeout": "2s"}, "approval", 2),
        ({"type": "approval"}, "approval", None),
        ({"type": "build"}, None, None),
    ],
)
def test_kinds_and_wake_up_times(fields: dict[str, Any], kind: str | None, wakes: float | None) -> None:
    spec = StepSpec.model_validate({"id": "s", **fields})
    assert wait_kind(spec) == kind == wait_kind(spec.model_dump(exclude_none=True))
    expected = None if wakes is None else T0 + timedelta(seconds=wakes)
    assert wakes_at(spec, T0) == expected
    assert wakes_at(spec, None) is None


@pytest.mark.parametrize(
    ("fields", "ok", "result", "error"),
    [
        ({"sleep": "3s"}, True, {"slept": 3.0}, None),
        ({"wait_for": {"signal": "ci", "timeout": "1m"}}, False, None,
         "timed out after 60s waiting for signal 'ci'"),
        ({"type": "approval", "timeout": "2s"}, False, {"approved": False, "by": "timeout", "comment": None},
         "rejected: no decision within 2s (on_timeout: reject)"),
        ({"type": "approval", "timeout": "2s", "on_timeout": "approve"}, True,
         {"approved": True, "by": "timeout", "comment": None}, None),
    ],
)
def test_what_a_time_up_means(fields: dict[str, Any], ok: bool, result: Any, error: str | None) -> None:
    outcome = time_up(StepSpec.model_validate({"id": "s", **fields}))
    assert (outcome.ok, outcome.result, outcome.error) == (ok, result, error)


# draft -> lint -> review(gate) -> publish; side branch: draft -> notes
DEPENDENTS = {
    "draft": ["lint", "notes"], "lint": ["review"], "review": ["publish"], "publish": [], "notes": []
}


@pytest.mark.parametrize(
    ("target", "rounds", "expected"),
    [
        ("draft", 0, ["draft", "lint", "notes", "review", "publish"]),
        ("lint", 2, ["lint", "review", "publish"]),
        ("notes", 0, "does not lead to approval 'review'"),
        ("publish", 0, "does not lead to approval 'review'"),
        ("review", 0, "not the approval itself"),
        ("ghost", 0, "no step 'ghost'"),
        ("draft", 3, "sent back 3 times already (max_rework: 3)"),
    ],
)
def test_which_steps_a_rework_runs_again(target: str, rounds: int, expected: list[str] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(ReworkRefused, match=expected.replace("(", r"\(").replace(")", r"\)")) as info:
            rework_plan(DEPENDENTS, "review", target, rounds, 3)
        assert info.value.conflict is (rounds >= 3 and target == "draft")
        return
    assert sorted(rework_plan(DEPENDENTS, "review", target, rounds, 3)) == sorted(expected)
    assert downstream(DEPENDENTS, target)[0] == target


def test_a_gate_comment_may_be_used_before_the_gate() -> None:
    steps = [
        {"id": "draft", "type": "d", "payload": {"note": "${{ steps.review.comment }}"}},
        {"id": "review", "type": "approval", "needs": ["draft"]},
        {"id": "other", "type": "o", "payload": {"x": "${{ steps.later.comment }}"}},
        {"id": "later", "type": "l"},
    ]
    errors = graph_errors(WorkflowSpec.model_validate({"name": "w", "steps": steps}))
    assert [e.message for e in errors] == [
        "step 'other' uses steps.later but does not need it (add it to needs)"
    ]


WF = "kind: Workflow\nname: wf\nsteps:\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (WF + "  - id: a\n    sleep: forever\n", "wf.yaml:5: steps[0].sleep: 'forever' is not a duration"),
        (WF + "  - id: a\n    wait_for: {signal: ci, timeout: x}\n", "wf.yaml:5: steps[0].wait_for.timeout:"),
        (WF + "  - id: a\n    wait_for: {timeout: 1h}\n", "wf.yaml:5: steps[0].wait_for.signal: required"),
        (WF + "  - id: a\n    sleep: 1m\n    type: t\n", "wf.yaml:4: steps[0]: a sleep step runs no task"),
        (
            WF + "  - id: a\n    type: approval\n    on_timeout: approve\n",
            "wf.yaml:4: steps[0]: on_timeout is for an approval step with a timeout",
        ),
        (WF + "  - id: a\n    type: approval\n    max_rework: many\n", "wf.yaml:6: steps[0].max_rework:"),
        (WF + "  - id: a\n", "wf.yaml:4: steps[0]: type: required (or sleep: DURATION"),
    ],
)
def test_bad_waiting_fields_name_the_file_and_line(text: str, message: str) -> None:
    assert_refused(text, "wf.yaml", message)


def assert_refused(text: str, filename: str, message: str) -> None:
    """The document is refused with one error that starts with `message` (FILE:LINE: field: ...)."""
    with pytest.raises(DocumentError) as info:
        load_documents(text, filename)
    assert str(info.value).startswith(message), str(info.value)
