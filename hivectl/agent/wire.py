"""The agent protocol's messages as the agent sees them: plain dataclasses read from and written to
JSON. hive-agent runs in every agent process, so it keeps to the standard library (no pydantic: an
idle agent is ~20 MB lighter); hived validates what arrives with its own schemas
(hived.model.schemas), which these mirror field for field."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class WireError(ValueError):
    """hived's answer does not have the shape this agent expects."""


def _get(data: Any, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if not isinstance(data, dict):
        raise WireError(f"expected an object, got {type(data).__name__}")
    if key not in data or data[key] is None:
        if default is ...:
            raise WireError(f"{key}: missing")
        return default
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise WireError(f"{key}: expected {kind}, got {type(value).__name__}")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


NUMBER = (int, float)


@dataclass
class Lease:
    task_id: str
    attempt: int
    lease: int
    type: str
    payload: dict[str, Any]
    timeout: float | None = None
    stall_timeout: float | None = None
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Lease:
        return cls(
            task_id=_get(data, "task_id", str),
            attempt=_get(data, "attempt", int),
            lease=_get(data, "lease", int),
            type=_get(data, "type", str),
            payload=_get(data, "payload", dict),
            timeout=_get(data, "timeout", NUMBER, None),
            stall_timeout=_get(data, "stall_timeout", NUMBER, None),
            env={str(k): str(v) for k, v in _get(data, "env", dict, {}).items()},
        )


@dataclass
class AttemptResult:
    task_id: str
    attempt: int
    lease: int
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    reason: str | None = None
    output: str | None = None
    usage: list[dict[str, Any]] | None = None  # increment batches not sent with a heartbeat
    workspace: dict[str, Any] | None = None  # the attempt's worktree: branch, commits, diff

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)  # shallow: asdict's deep copy of the result cost more than sending it
        if data["workspace"] is None:
            del data["workspace"]
        return data


@dataclass
class ResultAck:
    task_id: str
    accepted: bool
    reason: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> ResultAck:
        return cls(_get(data, "task_id", str), _get(data, "accepted", bool), _get(data, "reason", str, None))


@dataclass
class WorkRequest:
    incarnation: int
    slots: int
    wait: float = 20.0
    results: list[AttemptResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "incarnation": self.incarnation,
            "slots": self.slots,
            "wait": self.wait,
            "results": [r.to_json() for r in self.results],
        }


@dataclass
class WorkResponse:
    tasks: list[Lease]
    acks: list[ResultAck]
    cancel: list[str]
    status: str
    input: list[dict[str, str]] = field(default_factory=list)  # lines to type: {task_id, text}

    @classmethod
    def from_json(cls, data: Any) -> WorkResponse:
        return cls(
            tasks=[Lease.from_json(t) for t in _get(data, "tasks", list)],
            acks=[ResultAck.from_json(a) for a in _get(data, "acks", list)],
            cancel=[str(c) for c in _get(data, "cancel", list, [])],
            status=_get(data, "status", str),
            input=[
                {"task_id": _get(i, "task_id", str), "text": _get(i, "text", str)}
                for i in _get(data, "input", list, [])
            ],
        )


@dataclass
class HeartbeatRequest:
    incarnation: int
    running: list[str] = field(default_factory=list)
    rss_bytes: int | None = None
    cpu_percent: float | None = None
    usage: list[dict[str, Any]] = field(default_factory=list)  # increment batches (hivectl/agent/usage.py)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class HeartbeatResponse:
    status: str
    heartbeat_interval: float
    cancel: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Any) -> HeartbeatResponse:
        return cls(
            status=_get(data, "status", str),
            heartbeat_interval=float(_get(data, "heartbeat_interval", NUMBER)),
            cancel=[str(c) for c in _get(data, "cancel", list, [])],
        )


@dataclass
class RegisterRequest:
    """A spawned agent names its `agent_id` and `incarnation`; an external one sends its `spec`
    (an Agent document as a mapping, validated by hived)."""

    pid: int
    hostname: str
    agent_id: str | None = None
    incarnation: int | None = None
    spec: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass
class AgentInfo:
    id: str
    name: str
    max_concurrency: int


@dataclass
class RegisterResponse:
    agent: AgentInfo
    incarnation: int
    heartbeat_interval: float
    handler: dict[str, Any] | None
    env: dict[str, str]
    workdir: str | None
    secret_env: list[str] = field(default_factory=list)
    workspace: dict[str, Any] | None = None  # the Agent's workspace: (with max_diff_bytes)
    attempts: dict[str, Any] | None = None  # root: where attempts' folders go; the artifacts' limits
    fence_after: float | None = None  # a node of a cluster: stop handlers after this long without hived

    @classmethod
    def from_json(cls, data: Any) -> RegisterResponse:
        agent = _get(data, "agent", dict)
        return cls(
            agent=AgentInfo(
                _get(agent, "id", str), _get(agent, "name", str), _get(agent, "max_concurrency", int)
            ),
            incarnation=_get(data, "incarnation", int),
            heartbeat_interval=float(_get(data, "heartbeat_interval", NUMBER)),
            handler={k: v for k, v in _get(data, "handler", dict, {}).items() if v is not None} or None,
            env={str(k): str(v) for k, v in _get(data, "env", dict, {}).items()},
            workdir=_get(data, "workdir", str, None),
            secret_env=[str(k) for k in _get(data, "secret_env", list, [])],
            workspace=_get(data, "workspace", dict, None),
            attempts=_get(data, "attempts", dict, None),
            fence_after=_get(data, "fence_after", NUMBER, None),
        )
