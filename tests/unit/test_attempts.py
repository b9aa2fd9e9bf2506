"""The pure rule from an attempt's end to its task's next state (hived.tasks.attempts.decide)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hived.tasks.attempts import Ending, InFlight, ReadyTask, decide

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def ending(ok: bool, attempt: int = 1, max_attempts: int = 3, **kw: Any) -> Ending:
    options = {"retry": {"initial": 2.0, "multiplier": 2.0, "max": 60.0, "jitter": 0.0}}
    options.update(kw.pop("options", {}))
    task = ReadyTask("t1", "build", {}, 5, 1, frozenset(), options, attempt - 1, max_attempts)
    return Ending(InFlight(task, "agent-1", lease=7, attempt=attempt), ok, **kw)


@pytest.mark.parametrize(
    ("case", "status", "outcome", "retry_in"),
    [
        (ending(True, result={"x": 1}), "completed", "completed", None),
        (ending(False, reason="cancelled"), "cancelled", "cancelled", None),
        (ending(False, error="boom"), "retrying", "failed", 2.0),
        (ending(False, attempt=2, error="boom"), "retrying", "failed", 4.0),
        (ending(False, attempt=3, error="boom"), "failed", "failed", None),
        (ending(False, attempt=1, max_attempts=1, reason="agent_lost"), "failed", "failed", None),
    ],
)
def test_outcomes(case: Ending, status: str, outcome: str, retry_in: float | None) -> None:
    decide(case, NOW)
    assert (case.row["status"], case.row["outcome"], case.retry_in) == (status, outcome, retry_in)
    assert case.row["lease"] == 7 and case.row["agent_id"] == "agent-1"
    if retry_in is not None:
        assert case.row["next_attempt_at"] == NOW + timedelta(seconds=retry_in)


def test_success_when_false_fails_the_attempt() -> None:
    case = ending(True, result={"passed": False}, options={"success_when": "result.passed == true"})
    decide(case, NOW)
    assert case.row["status"] == "retrying" and case.reason == "check_failed"
    assert "was false" in case.row["error"]


def test_success_when_true_keeps_the_result() -> None:
    case = ending(True, result={"passed": True}, options={"success_when": "result.passed == true"})
    decide(case, NOW)
    assert case.row["status"] == "completed" and case.row["result"] == {"passed": True}
    assert case.row["error"] is None


def test_success_when_on_a_missing_field_is_a_clear_failure() -> None:
    case = ending(True, attempt=3, result={}, options={"success_when": "result.nope.deeper == 1"})
    decide(case, NOW)
    assert case.row["status"] == "failed" and case.row["error"].startswith("success_when")
