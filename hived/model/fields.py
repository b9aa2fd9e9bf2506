"""The field types the schemas share (task types, capabilities, durations, JSON objects, labels) and
their rules. No I/O; the schemas (schemas.py, queue.py, workflow.py) import them from here."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from hived.model.durations import parse_duration, parse_size
from hived.model.values import check_json, check_text, text_problem

Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
CAPABILITY_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,100}$")
MAX_CAPABILITIES = 64
# A JSON object hived stores (payloads, params): valid text, finite numbers, bounded nesting.
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json)]
Text = Annotated[str, AfterValidator(check_text)]


def task_type(value: str) -> str:
    if not TYPE_RE.match(value):
        raise ValueError("must be 1-100 characters: letters, digits, '.', '_', ':', '/' or '-'")
    return value


def capabilities(value: list[str]) -> list[str]:
    """A set of capabilities, sorted: each 1-100 characters, no whitespace or control characters."""
    if len(value) > MAX_CAPABILITIES:
        raise ValueError(f"at most {MAX_CAPABILITIES} capabilities")
    for cap in value:
        if not isinstance(cap, str) or not CAPABILITY_RE.match(cap) or text_problem(cap):
            raise ValueError(f"{cap!r}: a capability is 1-100 characters, no spaces or control characters")
    return sorted(set(value))


TaskType = Annotated[str, AfterValidator(task_type)]
Capabilities = Annotated[list[str], AfterValidator(capabilities)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

# Labels (`--label K=V`): a key like a Kubernetes label's name, a value of visible text.
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$")
MAX_LABELS = 32
MAX_LABEL_VALUE = 255


def label_problem(key: str, value: str) -> str | None:
    """Why `key=value` cannot be a label, or None."""
    if not LABEL_KEY_RE.match(key):
        return (
            f"{key!r}: a label key is 1-63 letters, digits, '.', '_', '/' or '-' "
            "(first and last a letter or digit)"
        )
    if len(value) > MAX_LABEL_VALUE:
        return f"{key}: a label value is at most {MAX_LABEL_VALUE} characters"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value) or text_problem(value):
        return f"{key}: a label value holds no control characters"
    return None


def check_labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    for key, text in value.items():
        if (problem := label_problem(key, text)) is not None:
            raise ValueError(problem)
    return value


def parse_label(text: str) -> tuple[str, str]:
    """`KEY=VALUE` (the value may be empty, and may hold '='); ValueError naming what is wrong."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r} is not KEY=VALUE")
    if (problem := label_problem(key, value)) is not None:
        raise ValueError(problem)
    return key, value


Labels = Annotated[dict[str, str], AfterValidator(check_labels)]
