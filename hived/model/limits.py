"""Flow control in the vocabulary: the `kind: Limit` document (a token bucket `rate`, a per-key
`concurrency`, or both), the `limits:` a task or a workflow step names, and what the API shows of a
limit. No I/O: hived's limits slice (hived/limits/) enforces them."""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LIMIT_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|min|h)\s*$")
RATE_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0}
MAX_UNITS = 1_000_000
MAX_KEY_CHARS = 200
MAX_LIMITS_PER_TASK = 8
MAX_RETRY_AFTER = 86400.0  # a throttled report closes a limit for at most a day


def parse_rate(value: str) -> tuple[float, float]:
    """`50/min` -> (50.0, 60.0): so many tokens per so many seconds; ValueError for a user."""
    match = RATE_RE.match(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"{value!r} is not a rate: use N/s, N/min or N/h with N > 0 (like 50/min)")
    return float(match.group(1)), RATE_UNITS[match.group(2)]


def check_limit_name(value: str) -> str:
    if not LIMIT_NAME_RE.match(value):
        raise ValueError("must be 1-63 lowercase letters, digits, '.', '_' or '-'")
    return value


class LimitSpec(BaseModel):
    """A Limit document (`kind: Limit`) or the body of `PUT /limits/{name}`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    rate: str | None = Field(default=None, description="token bucket: N/s, N/min or N/h")
    burst: int | None = Field(default=None, ge=1, le=MAX_UNITS, description="bucket size (default N)")
    concurrency: int | None = Field(default=None, ge=1, le=100_000, description="at most N hold it, per key")
    strategy: Literal["queue", "cancel_in_progress", "cancel_newest"] = "queue"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_limit_name(value)

    @field_validator("rate")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate(value)
        return value

    @model_validator(mode="after")
    def _shape(self) -> LimitSpec:
        if self.rate is None and self.concurrency is None:
            raise ValueError("a limit needs a rate, a concurrency, or both")
        if self.burst is not None and self.rate is None:
            raise ValueError("burst: only with a rate")
        if self.strategy != "queue" and self.concurrency is None:
            raise ValueError(f"strategy: {self.strategy} needs a concurrency")
        return self

    @property
    def per_second(self) -> float | None:
        """Tokens added per second, or None without a rate."""
        if self.rate is None:
            return None
        count, seconds = parse_rate(self.rate)
        return count / seconds

    @property
    def bucket_size(self) -> float | None:
        if self.rate is None:
            return None
        return float(self.burst) if self.burst is not None else max(1.0, parse_rate(self.rate)[0])


class LimitRef(BaseModel):
    """One limit a task (or a workflow step) takes: `units` of it, under `key` (a literal, or a
    `${{ payload.x }}` CEL template rendered against the task's payload at submit)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    key: str | None = Field(default=None, min_length=1, max_length=MAX_KEY_CHARS)
    units: int = Field(default=1, ge=1, le=MAX_UNITS, strict=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_limit_name(value)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and "${{" in value:
            from hived.model.expressions import check_syntax
            from hived.model.graph import TEMPLATE_RE

            for match in TEMPLATE_RE.finditer(value):
                check_syntax(match.group(1))
        return value


class TakenLimit(BaseModel):
    """A limit as a task shows it (`Task.limits`): the key as rendered at submit. Checked then, as a
    LimitRef; not again in every task view (`taken` gives one shared instance per name, key, units)."""

    model_config = ConfigDict(frozen=True)

    name: str
    key: str | None = None
    units: int = 1


@functools.lru_cache(maxsize=4096)
def _taken(name: str, key: str | None, units: int) -> TakenLimit:
    return TakenLimit.model_construct(name=name, key=key, units=units)


def taken(stored: list[dict[str, Any]]) -> list[TakenLimit]:
    """A task's stored limits ({name, key, units}) as shown: instances shared between the tasks
    that take the same key, so a task view does not validate them again."""
    return [_taken(ref["name"], ref.get("key"), ref.get("units", 1)) for ref in stored]


def check_refs(refs: list[LimitRef]) -> list[LimitRef]:
    """At most MAX_LIMITS_PER_TASK limits, each named once."""
    if len(refs) > MAX_LIMITS_PER_TASK:
        raise ValueError(f"at most {MAX_LIMITS_PER_TASK} limits")
    names = [ref.name for ref in refs]
    if dup := next((n for n in names if names.count(n) > 1), None):
        raise ValueError(f"limit {dup!r} is named twice")
    return refs


def parse_throttle(result: object) -> tuple[str, float]:
    """A throttled report's `{"throttled": {"limit": NAME, "retry_after": SECONDS}}` -> (NAME,
    SECONDS), SECONDS capped at MAX_RETRY_AFTER; ValueError saying what is wrong."""
    report = result.get("throttled") if isinstance(result, dict) else None
    if not isinstance(report, dict):
        raise ValueError('the result holds no {"throttled": {"limit": ..., "retry_after": ...}}')
    name, seconds = report.get("limit"), report.get("retry_after", 0)
    if not isinstance(name, str) or not name:
        raise ValueError("throttled.limit: a limit name is required")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < float("inf"):
        raise ValueError(f"throttled.retry_after: {seconds!r} is not a number of seconds >= 0")
    return name, min(float(seconds), MAX_RETRY_AFTER)


def waiting_reason(name: str, key: str | None) -> str:
    """`limit NAME[KEY]` (or `limit NAME`): why a ready task does not start."""
    return f"limit {name}[{key}]" if key is not None else f"limit {name}"


class LimitKeyInfo(BaseModel):
    key: str | None
    holders: int = Field(description="units held by running tasks")
    waiting: int = Field(description="tasks waiting for this key")


class LimitInfo(BaseModel):
    """A limit as `GET /limits[/{name}]` shows it."""

    name: str
    rate: str | None
    burst: int | None
    concurrency: int | None
    strategy: str
    tokens: float | None = Field(description="tokens left in the bucket now")
    holders: int = Field(description="units held by running tasks, all keys")
    waiting: int = Field(description="tasks waiting for this limit")
    closed_until: datetime | None = Field(description="closed by a throttled report until then")
    keys: list[LimitKeyInfo] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class LimitList(BaseModel):
    items: list[LimitInfo]
    total: int


class AppliedLimit(BaseModel):
    name: str
    action: Literal["created", "configured", "unchanged"]
