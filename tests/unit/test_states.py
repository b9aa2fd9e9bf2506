"""The state machines of hived.model.states: each legal move is allowed, each other one refused."""

from __future__ import annotations

import pytest

from hived.model.states import (
    FINAL,
    TRANSITIONS,
    AgentStatus,
    IllegalTransition,
    RunStatus,
    Status,
    StepStatus,
    TaskStatus,
    transition,
)

A, T, R, S = AgentStatus, TaskStatus, RunStatus, StepStatus

LEGAL = [
    (T.PENDING, T.ASSIGNED),
    (T.ASSIGNED, T.RUNNING),
    (T.RUNNING, T.RETRYING),
    (T.RETRYING, T.ASSIGNED),
    (T.RUNNING, T.COMPLETED),
    (T.FAILED, T.PENDING),
    (T.CANCELLED, T.PENDING),
    (A.STARTING, A.ACTIVE),
    (A.ACTIVE, A.ACTIVE),  # a repeated report
    (A.UNHEALTHY, A.STARTING),
    (A.FAILED, A.STARTING),
    (R.PENDING, R.RUNNING),
    (R.RUNNING, R.SUCCEEDED),
    (R.PENDING, R.CANCELLED),
    (S.PENDING, S.WAITING),
    (S.WAITING, S.SUCCEEDED),
    (S.PENDING, S.SKIPPED),
    (S.RUNNING, S.CANCELLED),
]

ILLEGAL = [
    (T.COMPLETED, T.PENDING),  # a completed task is never run again
    (T.PENDING, T.COMPLETED),  # nothing completes without an attempt
    (T.CANCELLED, T.RUNNING),
    (T.PENDING, T.PENDING),
    (A.STOPPED, A.BUSY),
    (A.FAILED, A.ACTIVE),
    (R.SUCCEEDED, R.RUNNING),
    (R.FAILED, R.CANCELLED),  # one end, once
    (R.PENDING, R.SUCCEEDED),
    (S.SUCCEEDED, S.FAILED),
    (S.SKIPPED, S.RUNNING),
    (S.RUNNING, S.WAITING),
]


@pytest.mark.parametrize(("current", "new"), LEGAL)
def test_legal_moves(current: Status, new: Status) -> None:
    assert current.transition(new) == new
    assert transition(current, new) == new


@pytest.mark.parametrize(("current", "new"), ILLEGAL)
def test_illegal_moves_are_refused(current: Status, new: Status) -> None:
    with pytest.raises(IllegalTransition, match=f"cannot go from {current} to {new}"):
        current.transition(new)


@pytest.mark.parametrize("kind", [AgentStatus, TaskStatus, RunStatus, StepStatus])
def test_every_status_has_a_row_and_final_ones_lead_nowhere_new(kind: type[Status]) -> None:
    table = TRANSITIONS[kind]
    assert set(table) == set(kind)
    for status in kind:
        assert table[status] <= set(kind)
    for status in FINAL[kind] - {T.FAILED, T.CANCELLED, A.STOPPED, A.FAILED}:
        if kind is StepStatus and status != S.CANCELLED:  # a rework sends a finished step back only
            assert table[status] == {S.PENDING}
            continue
        assert not table[status], f"{status} is final but can move"  # only retries/restarts leave an end


def test_a_string_is_taken_as_its_status() -> None:
    assert T.RUNNING.transition("completed") is T.COMPLETED
    assert T.COMPLETED.final and not T.RUNNING.final
    with pytest.raises(ValueError):
        T.RUNNING.transition("done")
