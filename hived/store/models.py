"""The database schema, from the PRD's tables (agents, tasks, workflows) plus history tables.

Ids are UUID strings (String(36)) so that prefixes match the same way on SQLite and PostgreSQL.
JSON columns are JSONB on PostgreSQL. Times are stored as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

Json = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class AgentRow(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20), default="spawned")
    status: Mapped[str] = mapped_column(String(20), default="starting")
    status_reason: Mapped[str | None] = mapped_column(Text)
    capabilities: Mapped[list[str]] = mapped_column(Json, default=list)
    config: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    max_concurrency: Mapped[int] = mapped_column(Integer, default=1)
    pid: Mapped[int | None] = mapped_column(Integer)
    incarnation: Mapped[int] = mapped_column(Integer, default=0)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    tasks_done: Mapped[int] = mapped_column(Integer, default=0)
    tasks_failed: Mapped[int] = mapped_column(Integer, default=0)
    rss_bytes: Mapped[int | None] = mapped_column(BigInteger)
    cpu_percent: Mapped[float | None] = mapped_column(Float)
    cordoned: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")  # no new work
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_heartbeat: Mapped[datetime | None] = mapped_column(UTCDateTime)
    node: Mapped[str | None] = mapped_column(String(63))  # the node that supervises it (hived.nodes)

    __table_args__ = (Index("idx_agents_status", "status"),)


class IncarnationRow(Base):
    __tablename__ = "agent_incarnations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(String(36), index=True)
    number: Mapped[int] = mapped_column(Integer)
    pid: Mapped[int | None] = mapped_column(Integer)
    hostname: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    signal: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("agent_id", "number", name="uq_incarnation_number"),)


class TaskRow(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)  # submission order, FIFO within a priority
    type: Mapped[str] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(Integer, default=5)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    agent_id: Mapped[str | None] = mapped_column(String(36))
    requires: Mapped[list[str]] = mapped_column(Json, default=list)
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    result: Mapped[dict[str, Any] | None] = mapped_column(Json)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease: Mapped[int | None] = mapped_column(BigInteger)  # fencing token of the current attempt
    options: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)  # retry, timeouts, checks
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    run_id: Mapped[str | None] = mapped_column(String(36))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    labels: Mapped[dict[str, str] | None] = mapped_column(Json)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # status scheduled until then
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # not started by then: failed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # attempts ended by a throttled report: they do not count toward max_attempts
    throttled: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        Index("idx_tasks_agent_id", "agent_id"),
        Index("idx_tasks_created_at", "created_at"),
        Index("idx_tasks_ready", "status", "priority", "seq"),
        Index("idx_tasks_run_id", "run_id"),
    )


class PauseRow(Base):
    """A pause of the queue (`hivectl queue pause`): the tasks it selects stay pending. `key` is the
    selector written out, so a pause given twice is stored once."""

    __tablename__ = "queue_pauses"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    type: Mapped[str | None] = mapped_column(String(100))
    requires: Mapped[list[str] | None] = mapped_column(Json)
    workflow: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttemptRow(Base):
    __tablename__ = "task_attempts"

    lease: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    task_id: Mapped[str] = mapped_column(String(36), index=True)
    number: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[str | None] = mapped_column(String(36))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(50))
    error: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)


class WorkflowRow(Base):
    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer, default=1)
    definition: Mapped[dict[str, Any]] = mapped_column(Json)
    status: Mapped[str] = mapped_column(String(20), default="created")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("name", "version", name="uq_workflow_version"),)


class RunRow(Base):
    __tablename__ = "workflow_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(36), index=True)
    workflow: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    version: Mapped[int] = mapped_column(Integer, default=1)
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)  # run timeout
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # grows with each change
    # a sub-workflow's run: the run and step that started it; a rerun: the run it reruns
    parent_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    parent_step: Mapped[str | None] = mapped_column(String(100))
    rerun_of: Mapped[str | None] = mapped_column(String(36))
    outputs: Mapped[Any] = mapped_column(Json, nullable=True)  # the workflow's `outputs`, rendered at the end
    driver: Mapped[str | None] = mapped_column(String(63))  # the node that drives it (hived.nodes)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("idx_runs_status", "status"),)


class RunStepRow(Base):
    """One step of one run: the durable state the workflow engine resumes from."""

    __tablename__ = "run_steps"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)  # order in the document
    status: Mapped[str] = mapped_column(String(20), default="pending")
    task_id: Mapped[str | None] = mapped_column(String(36))
    agent_id: Mapped[str | None] = mapped_column(String(36))
    result: Mapped[Any] = mapped_column(Json, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(255))  # approval gates: who approved/rejected
    child_run_id: Mapped[str | None] = mapped_column(String(36))  # a `workflow:` step: the run it started
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RunContextRow(Base):
    """The shared key-value context of a run; `version` is the compare-and-set token."""

    __tablename__ = "run_context"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(Json, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenRow(Base):
    """An API token for TCP clients: only its SHA-256 is kept; the token is shown once, at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(20))
    agent: Mapped[str | None] = mapped_column(String(255))  # an agent token acts only as this agent
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LimitRow(Base):
    """A `kind: Limit`: its definition, its token bucket (the level `tokens` at `tokens_at`, epoch
    seconds, written with every assignment that takes from it; `version` is the compare-and-set
    token), and until when a throttled report closed it (epoch seconds)."""

    __tablename__ = "limits"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(Json)
    tokens: Mapped[float | None] = mapped_column(Float)
    tokens_at: Mapped[float | None] = mapped_column(Float)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    closed_until: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScheduleRow(Base):
    """A `kind: Schedule`: its definition, whether it is paused, when it starts next, and what it
    started last (a run's or a task's id) with how many starts wait for it (overlap: queue)."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(Json)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_id: Mapped[str | None] = mapped_column(String(36))
    queued: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UsageRecordRow(Base):
    """One report of spend by a handler (an increment batch, seq >= 1, or its result's usage, seq 0),
    recorded once per (lease, seq). Every sum (per attempt, task, run, agent, model, day) is a sum
    over these rows; money is whole micro-USD, so the sums agree exactly whichever way they group."""

    __tablename__ = "usage_records"

    lease: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    task_id: Mapped[str] = mapped_column(String(36))
    run_id: Mapped[str | None] = mapped_column(String(36))
    agent_id: Mapped[str | None] = mapped_column(String(36))
    model: Mapped[str | None] = mapped_column(String(200))
    day: Mapped[str] = mapped_column(String(10))  # UTC, YYYY-MM-DD
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("idx_usage_task", "task_id"),
        Index("idx_usage_run", "run_id"),
        Index("idx_usage_agent_day", "agent_id", "day"),
        Index("idx_usage_day", "day"),
        Index("idx_usage_recorded_at", "recorded_at"),
    )


class NodeRow(Base):
    """A hived of a cluster on one PostgreSQL (hived.nodes). Times are the database's clock."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, unique=True)
    status: Mapped[str] = mapped_column(String(20))
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lost_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LimitHoldRow(Base):
    """Units of a limit a running task holds on a cluster's PostgreSQL (hived.nodes.limits): written
    in its claim's commit, deleted with its attempt's end (`lease`). `key` is '' for a limit without
    a key."""

    __tablename__ = "limit_holds"

    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    units: Mapped[int] = mapped_column(Integer)
    lease: Mapped[int] = mapped_column(BigInteger)
    node: Mapped[str] = mapped_column(String(63))

    __table_args__ = (Index("idx_limit_holds_name_key", "name", "key"),)


class RunBudgetRow(Base):
    """What `hivectl workflow resume RUN --add-budget` added to a run's budget."""

    __tablename__ = "run_budgets"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    added_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    added_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttemptWorkspaceRow(Base):
    """An attempt's git worktree as its agent reported it: branch, commits, the (bounded) diff."""

    __tablename__ = "attempt_workspaces"

    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    report: Mapped[dict[str, Any]] = mapped_column(Json)  # branch, base, head, commits, worktree...
    diff: Mapped[str] = mapped_column(Text, default="")
    diff_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
