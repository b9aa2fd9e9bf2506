"""hived's input limits, each set in hived.yaml (`kind: Daemon`), and the checks that apply them.

A request over `max_request_bytes` is refused before any route reads it (413, `hived/http/body_limit.py`). A
task's payload (submitted, or rendered by a workflow step) over `max_payload_bytes` is refused with
413. A result over `max_result_bytes` cannot be refused to the agent that already did the work: that
attempt fails with reason `result_too_large`, and the task's retry policy applies. Outputs and error
texts keep their last `max_output_bytes`. A list page over `max_page_size` is refused with 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hived.errors import HiveError, Invalid
from hived.model.states import AttemptReason
from hived.model.values import json_problem
from hived.store import jsontext


class TooLarge(HiveError):
    status_code = 413


@dataclass(frozen=True)
class Limits:
    max_request_bytes: int = 10 * 2**20
    max_payload_bytes: int = 2**20
    max_result_bytes: int = 2**20
    max_output_bytes: int = 64 * 2**10
    max_page_size: int = 5000
    max_page_bytes: int = 16 * 2**20
    max_artifact_bytes: int = 10 * 2**20  # one artifact file (hived/tasks/artifacts.py)
    max_attempt_artifacts_bytes: int = 50 * 2**20  # all of one attempt's artifacts
    max_diff_bytes: int = 2**20  # an attempt's stored diff (the rest is cut, `diff_truncated`)

    def check_payload(self, payload: Any, what: str = "payload") -> None:
        size = json_size(payload)
        if size > self.max_payload_bytes:
            raise TooLarge(
                f"{what}: {size} bytes of JSON, over hived's max_payload_bytes ({self.max_payload_bytes})"
            )

    def result_problem(self, result: Any) -> tuple[AttemptReason, str] | None:
        """Why this result cannot be stored (the attempt's reason and a message), or None."""
        if result is None:
            return None
        if (problem := json_problem(result, "result")) is not None:
            return AttemptReason.RESULT_INVALID, problem
        size = json_size(result)
        if size > self.max_result_bytes:
            message = f"result: {size} bytes of JSON, over hived's max_result_bytes ({self.max_result_bytes})"
            return AttemptReason.RESULT_TOO_LARGE, message
        return None

    def tail(self, text: str | None) -> str | None:
        """The last `max_output_bytes` of a text (outputs and error messages are logs: the end matters),
        with what cannot be stored (NUL, lone surrogates) replaced."""
        if text is None:
            return text
        text = storable(text)
        if len(text) <= self.max_output_bytes // 4:  # fast path: 4 bytes a char at most
            return text
        data = text.encode(errors="replace")
        if len(data) <= self.max_output_bytes:
            return text
        cut = len(data) - self.max_output_bytes
        return f"[{cut} bytes cut: max_output_bytes]\n" + data[cut:].decode(errors="ignore")

    def page(self, limit: int | None, default: int) -> int:
        """A list's `limit`: the route's default (capped by max_page_size) when none is asked."""
        if limit is None:
            return min(default, self.max_page_size)
        if limit > self.max_page_size:
            raise Invalid(f"limit: {limit} is over hived's max_page_size ({self.max_page_size})")
        return limit


def storable(text: str) -> str:
    """The text with NUL and lone surrogates replaced by U+FFFD: logs are kept, not refused."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def json_size(value: Any) -> int:
    return jsontext.size(value)
