"""Steps that wait instead of running a task: `sleep: 10m` (a durable timer), `wait_for: {signal: ci,
timeout: 2h}` (until `hivectl workflow signal RUN ci`), and approval gates with `timeout` and
`on_timeout`. None holds an agent: the step is `waiting`, and its wake-up time is its `started_at`
plus the duration, both stored, so a wait outlives a `kill -9` of hived. Pure."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from hived.model.fields import Duration, Strict
from hived.model.values import check_json

SIGNAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
APPROVAL = "approval"  # the step type of a gate that waits for `hivectl workflow approve`
SLEEP = "sleep"
SIGNAL = "signal"
OnTimeout = Literal["reject", "approve"]


class WaitFor(Strict):
    """`wait_for:` of a step: the signal's name, and how long to wait for it (default: for ever)."""

    signal: str
    timeout: Duration | None = None

    @field_validator("signal")
    @classmethod
    def _signal(cls, value: str) -> str:
        if not SIGNAL_RE.match(value):
            raise ValueError("must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value


def wait_kind(step: Any) -> str | None:
    """`approval`, `sleep` or `signal` for a step that waits (a StepSpec or its stored mapping);
    None for a step that runs a task."""
    get = step.get if isinstance(step, dict) else lambda name: getattr(step, name, None)
    if get("sleep") is not None:
        return SLEEP
    if get("wait_for") is not None:
        return SIGNAL
    return APPROVAL if get("type") == APPROVAL else None


def wait_problem(step: Any) -> str | None:
    """What is wrong with a step's waiting fields (None: nothing): one kind at a time, no task
    fields on a step that runs no task, `on_timeout` only with an approval's `timeout`."""
    kinds = [name for name in ("sleep", "wait_for") if getattr(step, name) is not None]
    if len(kinds) > 1:
        return "give one of sleep or wait_for, not both"
    if kinds and step.type is not None:
        return f"a {kinds[0]} step runs no task: no type"
    runs_workflow = getattr(step, "workflow", None) is not None
    if kinds and getattr(step, "for_each", None) is not None:
        return f"a {kinds[0]} step cannot fan out: no for_each"
    if kinds and runs_workflow:
        return f"a {kinds[0]} step runs no sub-workflow: no workflow"
    if not kinds and step.type is None and not runs_workflow:
        return "type: required (or sleep: DURATION, wait_for: {signal: NAME}, or workflow: NAME)"
    if kinds and step.payload:
        return f"a {kinds[0]} step runs no task: no payload"
    task_fields = step.requires or step.success_when or step.limits or step.stall_timeout
    if (kinds or step.type == APPROVAL) and task_fields:
        what = f"a {kinds[0]} step runs no task" if kinds else "an approval step waits for an operator"
        return f"{what}: no requires, success_when, limits or stall_timeout"
    if kinds and step.timeout is not None:
        return "a sleep or wait_for step has no timeout of its own (wait_for: {signal, timeout})"
    if step.on_timeout is not None and not (step.type == APPROVAL and step.timeout is not None):
        return "on_timeout is for an approval step with a timeout"
    return None


def wait_seconds(step: Any) -> float | None:
    """How long a waiting step waits before its time is up (None: until someone acts)."""
    kind = wait_kind(step)
    get = step.get if isinstance(step, dict) else lambda name: getattr(step, name, None)
    if kind == SLEEP:
        return float(get("sleep"))
    if kind == SIGNAL:
        wait_for = get("wait_for")
        timeout = wait_for.get("timeout") if isinstance(wait_for, dict) else wait_for.timeout
        return None if timeout is None else float(timeout)
    if kind == APPROVAL:
        timeout = get("timeout")
        return None if timeout is None else float(timeout)
    return None


def waiting_until(step: dict[str, Any], row: dict[str, Any]) -> datetime | None:
    """When a stored step that waits now wakes by itself (shown by `workflow status`)."""
    return wakes_at(step, row["started_at"]) if row["status"] == "waiting" else None


def wakes_at(step: Any, started_at: datetime | None) -> datetime | None:
    """When a waiting step that started at `started_at` wakes by itself (None: never)."""
    seconds = wait_seconds(step)
    if seconds is None or started_at is None:
        return None
    return started_at + timedelta(seconds=seconds)


class TimeUp(Strict):
    """What a waiting step becomes when its time is up."""

    ok: bool
    result: Any = None
    error: str | None = None


def time_up(step: Any) -> TimeUp:
    """The end of a wait whose time is up: a sleep succeeds; a signal wait fails; an approval is
    decided by its `on_timeout` (reject unless told to approve)."""
    kind = wait_kind(step)
    seconds = wait_seconds(step) or 0.0
    if kind == SLEEP:
        return TimeUp(ok=True, result={"slept": seconds})
    if kind == SIGNAL:
        name = step.wait_for.signal if not isinstance(step, dict) else step["wait_for"]["signal"]
        return TimeUp(ok=False, error=f"timed out after {seconds:g}s waiting for signal {name!r}")
    on_timeout = (step.get("on_timeout") if isinstance(step, dict) else step.on_timeout) or "reject"
    approved = on_timeout == "approve"
    result = {"approved": approved, "by": "timeout", "comment": None}
    if approved:
        return TimeUp(ok=True, result=result)
    error = f"rejected: no decision within {seconds:g}s (on_timeout: reject)"
    return TimeUp(ok=False, result=result, error=error)


class Signal(Strict):
    """`POST /runs/{id}/signals/{name}`: the data becomes the result of the steps waiting for it."""

    data: Annotated[Any, AfterValidator(check_json)] = Field(
        default=None, description="any JSON value; the waiting step's result"
    )
