"""What a handler is, what one attempt produces, and the pure rules that turn a process's exit or a
function's return value into that outcome (the "Concepts" of the design: exec and python handlers).

The two handlers live next door: `exec_handler` (one process per task) and `python_handler` (a
function in the agent process). `hivectl.agent.pick.make_handler` picks one from the agent's spec.
"""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass
from typing import Any, Protocol

from hivectl.agent.wire import Lease

TAIL_CHARS = 4096  # stdout/stderr tails in a result
OUTPUT_CHARS = 64 * 1024  # the attempt's captured output
ERROR_LINE_CHARS = 300

# Why an attempt failed, as the daemon records it.
ERROR, TIMEOUT, STALLED, CANCELLED, INTERRUPTED = "error", "timeout", "stalled", "cancelled", "interrupted"
THROTTLED = "throttled"  # back-pressure: hived puts the task back and closes the limit for a while
EX_TEMPFAIL = 75  # an exec handler's exit code for "throttled", with the JSON report on stdout


class Throttled(Exception):  # noqa: N818 - the name the design gives it
    """Raised (or returned) by a python handler that hit a provider's limit: the attempt ends with
    reason `throttled`, does not count toward max_attempts, the task goes back to the queue, and
    the limit `limit` (a `kind: Limit` name) stays closed for `retry_after` seconds, fleet-wide."""

    def __init__(self, limit: str, retry_after: float = 0.0) -> None:
        super().__init__(f"throttled by limit {limit!r}: retry after {retry_after:g}s")
        self.limit = limit
        self.retry_after = retry_after

    def report(self) -> dict[str, Any]:
        return {"throttled": {"limit": self.limit, "retry_after": self.retry_after}}


def throttled_outcome(report: dict[str, Any], output: str = "") -> AttemptOutcome | None:
    """`{"throttled": {"limit": NAME, "retry_after": S}}` as the outcome of a throttled attempt
    (hived checks the name and the seconds); None if `report` is not one."""
    body = report.get("throttled") if len(report) == 1 else None
    if not isinstance(body, dict) or not isinstance(body.get("limit"), str):
        return None
    message = f"throttled by limit {body['limit']!r}: retry after {body.get('retry_after', 0)}s"
    return AttemptOutcome.failed(THROTTLED, message, report, output)


def stop_message(reason: str) -> str:
    """The error of an attempt the agent stopped on request."""
    return "interrupted: the agent is stopping" if reason == INTERRUPTED else reason


@dataclass
class AttemptOutcome:
    """The end of one attempt as the handler saw it. `output` is the captured stdout+stderr (the newest
    `OUTPUT_CHARS` characters) and travels next to the result, never inside it."""

    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    reason: str | None = None
    output: str = ""
    workspace: dict[str, Any] | None = None  # the worktree's report (hivectl/agent/workspace.py)

    @classmethod
    def failed(
        cls, reason: str, error: str, result: dict[str, Any] | None = None, output: str = ""
    ) -> AttemptOutcome:
        return cls(ok=False, result=result, error=error, reason=reason, output=output)


class StopRequest:
    """Asks a running attempt to end early: `cancelled` (hived said so) or `interrupted` (the agent is
    stopping). The first reason given wins."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._future: asyncio.Future[None] | None = None

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            if self._future is not None and not self._future.done():
                self._future.set_result(None)

    def is_set(self) -> bool:
        return self.reason is not None

    def asked(self) -> asyncio.Future[None]:
        """A future done when a stop is asked, to `asyncio.wait` on beside the attempt (no task of its
        own to start and cancel for every attempt). Shared: wait on it, never cancel it."""
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
            if self.reason is not None:
                self._future.set_result(None)
        return self._future

    async def wait(self) -> None:
        await asyncio.shield(self.asked())


class Handler(Protocol):
    async def run(self, lease: Lease, stop: StopRequest) -> AttemptOutcome: ...


# --- output ---------------------------------------------------------------------------------------


class TailBuffer:
    """Text that keeps only its newest `limit` characters; `truncated` says whether any were dropped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._parts: list[str] = []
        self._size = 0
        self.truncated = False

    def add(self, text: str) -> None:
        if not text:
            return
        self._parts.append(text)
        self._size += len(text)
        if self._size > 2 * self.limit:  # compact now and then, not on every chunk
            self._compact()

    def _compact(self) -> None:
        joined = "".join(self._parts)
        if len(joined) > self.limit:
            self.truncated = True
            joined = joined[-self.limit :]
        self._parts, self._size = [joined], len(joined)

    def text(self) -> str:
        self._compact()
        return self._parts[0] if self._parts else ""


def tail(text: str, limit: int = TAIL_CHARS) -> str:
    return text[-limit:]


def last_line(text: str) -> str:
    """The last non-empty line, stripped and cut to one line's worth."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()[:ERROR_LINE_CHARS]
    return ""


# --- exec: from a process's exit to an outcome ----------------------------------------------------


def parse_json_object(text: str) -> dict[str, Any] | None:
    """`text` as a JSON object, or None when it is anything else (strict JSON: no NaN/Infinity)."""
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def exit_message(returncode: int, stderr: str) -> str:
    """`exit code 3: <last stderr line>` or `killed by signal 9 (SIGKILL)`."""
    if returncode < 0:
        try:
            name = f" ({signal.Signals(-returncode).name})"
        except ValueError:
            name = ""
        return f"killed by signal {-returncode}{name}"
    line = last_line(stderr)
    return f"exit code {returncode}" + (f": {line}" if line else "")


def exec_outcome(
    returncode: int,
    stdout: str,
    stderr: str,
    *,
    stopped_for: str | None = None,
    stop_detail: str = "",
    stdout_complete: bool = True,
    output: str = "",
) -> AttemptOutcome:
    """The outcome of an exec attempt. `stopped_for` is why the agent killed the process (timeout,
    stalled, cancelled, interrupted), None when it ended by itself. A JSON object on a complete stdout
    is the result of a successful run; otherwise the result is the tails of stdout and stderr."""
    tails = {"exit_code": returncode, "stdout": tail(stdout), "stderr": tail(stderr)}
    if stopped_for is not None:
        return AttemptOutcome.failed(stopped_for, stop_detail or stopped_for, tails, output)
    parsed = parse_json_object(stdout) if stdout_complete else None
    if returncode == EX_TEMPFAIL and parsed is not None and (throttled := throttled_outcome(parsed, output)):
        return throttled
    if returncode != 0:
        return AttemptOutcome.failed(ERROR, exit_message(returncode, stderr), tails, output)
    return AttemptOutcome(ok=True, result=parsed if parsed is not None else tails, output=output)


# --- python: from a return value to an outcome ----------------------------------------------------


def python_outcome(value: Any) -> AttemptOutcome:
    """A dict is the result, None is `{}`, anything else `{"value": x}`; the result must be JSON (it is
    normalised through JSON, so tuples become lists and keys strings)."""
    if isinstance(value, Throttled):
        value = value.report()
    if isinstance(value, dict) and (throttled := throttled_outcome(value)) is not None:
        return throttled
    result = {} if value is None else value if isinstance(value, dict) else {"value": value}
    try:
        normalised = json.loads(json.dumps(result, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        return AttemptOutcome.failed(
            ERROR, f"the handler returned a value that is not JSON-serialisable: {one_line(str(exc))}"
        )
    return AttemptOutcome(ok=True, result=normalised)


def exception_outcome(exc: BaseException) -> AttemptOutcome:
    """A python handler's exception: `Throttled` is back-pressure, anything else an error."""
    if isinstance(exc, Throttled):
        return python_outcome(exc)
    return AttemptOutcome.failed(ERROR, exception_message(exc))


def exception_message(exc: BaseException) -> str:
    """`ExcType: message` on one line."""
    text = one_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def one_line(text: str, limit: int = 2 * ERROR_LINE_CHARS) -> str:
    return " ".join(text.split())[:limit]
