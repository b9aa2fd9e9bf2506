"""Wire schemas of hived's API: what the daemon returns and accepts. Clients import these. The task
models live in hived.model.tasks (re-exported here)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hived.model.containers import ContainerRuntime
from hived.model.daemon import Health as Health
from hived.model.daemon import Status as Status
from hived.model.fields import (
    Capabilities,
    Duration,
    Size,
    Strict,
    Text,
)
from hived.model.tasks import Attempt as Attempt
from hived.model.tasks import RetryPolicy as RetryPolicy
from hived.model.tasks import Task as Task
from hived.model.tasks import TaskDetail as TaskDetail
from hived.model.tasks import TaskList as TaskList
from hived.model.tasks import TaskSubmit as TaskSubmit
from hived.model.terminals import TerminalInput, TerminalOptions
from hived.model.usage import Budget, BudgetState, UsageBatch, UsageSums
from hived.model.values import text_problem
from hived.model.workspaces import WorkspaceReport, WorkspaceSpec

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MIN_SECRET_CHARS = 4  # a shorter secret_env value cannot be masked in text without masking ordinary words
MAX_OFFSET = 2**62  # the largest offset, id or count a query takes (the database's integers are 64-bit)
MAX_WAIT = 60  # s: the longest `?wait=` of GET /tasks/{ref} and GET /runs/{id}
MAX_VERSION = 2**31 - 1


# --- agents ---------------------------------------------------------------------------------------


class Handler(TerminalOptions):
    """How an agent runs a task: one process per task (`exec`), or a function in the agent (`python`);
    an exec handler may run in a terminal (`tty`, hived/model/terminals.py)."""

    exec: list[str] | None = Field(default=None, min_length=1)
    python: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Handler:
        if (self.exec is None) == (self.python is None):
            raise ValueError("give exactly one of exec or python")
        if self.python is not None and not re.match(r"^[\w.]+:[\w.]+$", self.python):
            raise ValueError("python must look like package.module:function")
        return self


class RestartPolicy(Strict):
    policy: Literal["always", "on-failure", "never"] = "on-failure"
    max_restarts: int = Field(default=5, ge=0, le=1000)
    window: Duration = 60.0
    initial_delay: Duration = 1.0
    max_delay: Duration = 60.0
    stable_after: Duration = 600.0


class BreakerPolicy(Strict):
    """Failed tasks in a row that take the agent out of routing, and for how long (0 disables)."""

    threshold: int = Field(default=5, ge=0, le=1000)
    cooldown: Duration = 30.0


class AgentSpec(Strict):
    """An Agent document (`kind: Agent`) or the body of `POST /agents`."""

    name: str
    type: str | None = None
    capabilities: Capabilities = Field(default_factory=list)
    max_concurrency: int = Field(default=1, ge=1, le=1024)
    handler: Handler | None = None
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: list[str] = Field(
        default_factory=list, description="keys of env whose values are secret: never logged or shown"
    )
    workdir: Text | None = None
    heartbeat_interval: Duration = 5.0
    restart: RestartPolicy = Field(default_factory=RestartPolicy)
    replicas: int = Field(default=1, ge=1, le=1000)
    max_tasks: int | None = Field(default=None, ge=1, description="recycle the agent after this many tasks")
    max_memory: Size | None = Field(
        default=None, description="recycle the agent above this RSS (e.g. 512MiB)"
    )
    circuit_breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    budget: Budget | None = Field(default=None, description="per UTC day: what its tasks may spend")
    runtime: ContainerRuntime | None = Field(default=None, description="run hive-agent in a container")
    node: str | None = Field(default=None, description="the node that runs it (default: the one applying)")
    workspace: WorkspaceSpec | None = Field(default=None, description="a git worktree per attempt")

    @field_validator("name", "node")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_RE.match(value):
            raise ValueError("must be 1-63 lowercase letters, digits, '.', '_' or '-'")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not ENV_KEY_RE.match(key):
                raise ValueError(f"{key!r}: a variable name is letters, digits and '_', not first a digit")
            if (problem := text_problem(text)) is not None:
                raise ValueError(f"{key}: {problem}")
        return value

    @field_validator("heartbeat_interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if not 0.1 <= value <= 3600:
            raise ValueError("must be between 100ms and 1h")
        return value

    @model_validator(mode="after")
    def _secrets(self, info: ValidationInfo) -> AgentSpec:
        if unknown := [key for key in self.secret_env if key not in self.env]:
            raise ValueError(f"secret_env: {unknown[0]!r} is not a key of env")
        stored = (info.context or {}).get("stored")  # defined before the rule: loaded, not refused
        if not stored and (short := [k for k in self.secret_env if len(self.env[k]) < MIN_SECRET_CHARS]):
            raise ValueError(
                f"secret_env: {short[0]!r} is shorter than {MIN_SECRET_CHARS} characters; a secret must have"
                f" at least {MIN_SECRET_CHARS} characters to be masked (or leave it out of secret_env)"
            )
        return self


class Incarnation(BaseModel):
    number: int
    pid: int | None
    hostname: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None


class Agent(BaseModel):
    id: str
    name: str
    type: str
    kind: Literal["spawned", "external"]
    status: str
    status_reason: str | None = None
    capabilities: list[str]
    max_concurrency: int
    pid: int | None
    incarnation: int
    restarts: int
    current_tasks: list[str]
    tasks_done: int
    tasks_failed: int
    rss_bytes: int | None = None
    cpu_percent: float | None = None
    circuit: str = "closed"
    cordoned: bool = False  # `hivectl agent cordon`: no new work, running work finishes
    last_heartbeat: datetime | None
    created_at: datetime
    config: dict[str, Any]
    node: str | None = None  # the node that supervises it (several hived on one PostgreSQL)


class AgentDetail(Agent):
    incarnations: list[Incarnation]
    usage_today: UsageSums | None = None  # what its tasks spent this UTC day
    budget: BudgetState | None = None  # its budget for the day, and what is left


class AgentList(BaseModel):
    items: list[Agent]
    total: int


# --- the agent protocol ---------------------------------------------------------------------------


class RegisterRequest(Strict):
    """Sent by hive-agent on start. A spawned agent names its `agent_id`; an external one its spec."""

    agent_id: str | None = None
    incarnation: int | None = None
    spec: AgentSpec | None = None
    pid: int
    hostname: str


class RegisterResponse(BaseModel):
    agent: Agent
    incarnation: int
    heartbeat_interval: float
    handler: Handler | None
    env: dict[str, str]
    secret_env: list[str] = Field(default_factory=list)  # the agent masks these values in its own log
    workdir: str | None
    workspace: dict[str, Any] | None = None  # the Agent's workspace, with max_diff_bytes
    attempts: dict[str, Any] | None = None  # root of the attempts' folders; artifact limits
    fence_after: float | None = None  # a node of a cluster: the agent stops its handlers after this
    # many seconds without an answer from hived (hivectl.agent.fence)


class AttemptResult(Strict):
    """The end of one attempt, fenced by its attempt number and lease token."""

    task_id: str
    attempt: int
    lease: int
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    reason: str | None = None
    output: str | None = Field(default=None, description="captured stdout/stderr (tail)")
    usage: list[UsageBatch] | None = Field(
        default=None, max_length=10_000, description="the attempt's usage increments not sent yet"
    )
    workspace: WorkspaceReport | None = Field(default=None, description="the attempt's git worktree")


class WorkRequest(Strict):
    """Long-poll: report finished attempts, then wait up to `wait` s for at most `slots` new leases."""

    incarnation: int
    slots: int = Field(ge=0, le=1024)
    wait: float = Field(default=20.0, ge=0.0, le=60.0)
    results: list[AttemptResult] = Field(default_factory=list)


class Lease(BaseModel):
    task_id: str
    attempt: int
    lease: int
    type: str
    payload: dict[str, Any]
    timeout: float | None = None
    stall_timeout: float | None = None
    env: dict[str, str] = Field(default_factory=dict)


class ResultAck(BaseModel):
    task_id: str
    accepted: bool
    reason: str | None = None


class WorkResponse(BaseModel):
    tasks: list[Lease]
    acks: list[ResultAck]
    cancel: list[str] = Field(default_factory=list)
    status: str
    input: list[TerminalInput] = Field(default_factory=list)  # lines typed with `hivectl task send`


class HeartbeatRequest(Strict):
    incarnation: int
    running: list[str] = Field(default_factory=list)
    rss_bytes: int | None = None
    cpu_percent: float | None = None
    usage: list[UsageBatch] = Field(
        default_factory=list, max_length=10_000, description="usage increments of running attempts"
    )


class HeartbeatResponse(BaseModel):
    status: str
    cancel: list[str] = Field(default_factory=list)
    heartbeat_interval: float
