"""An agent as the manager holds it in memory: its spec, status, current process and counters, and
the conversions to and from its rows and its API view. The one rule of whether it may be given
work. No I/O."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hived import redact
from hived.agents.process import AgentProcess
from hived.agents.restarts import Restarts
from hived.model.schemas import Agent, AgentSpec
from hived.model.states import ROUTABLE_AGENT, AgentStatus


@dataclass
class LiveAgent:
    id: str
    name: str
    type: str
    kind: str
    spec: AgentSpec
    created_at: datetime
    status: AgentStatus = AgentStatus.STARTING
    status_reason: str | None = None
    incarnation: int = 0
    pid: int | None = None
    restarts: int = 0
    tasks_done: int = 0
    tasks_failed: int = 0
    rss_bytes: int | None = None
    cpu_percent: float | None = None
    last_heartbeat: datetime | None = None
    node: str | None = None  # the node that supervises it (hived.nodes); None on SQLite
    heartbeat_mono: float = 0.0
    started_mono: float = 0.0
    proc: AgentProcess | None = None
    watcher: asyncio.Task[None] | None = None
    pending_restart: asyncio.Task[None] | None = None
    backoff: Restarts = field(default_factory=Restarts)
    stopping: bool = False
    dirty: bool = True

    incarnation_tasks: int = 0
    recycle_reason: str | None = None  # why it is being recycled (drained, then ended and restarted)

    def __post_init__(self) -> None:
        redact.remember_env(self.spec.env, self.spec.secret_env)

    @property
    def recycling(self) -> bool:
        return self.recycle_reason is not None

    def idle_over_memory(self) -> bool:
        """Over max_memory before running any task: the agent alone needs more than it is allowed."""
        limit, rss = self.spec.max_memory, self.rss_bytes
        return self.incarnation_tasks == 0 and bool(limit and rss and rss > limit)

    def view(self, shown: AgentStatus, circuit: str, current_tasks: list[str]) -> Agent:
        """The agent as the API shows it (secret env values masked)."""
        spec = self.spec.model_dump(mode="json", exclude={"name", "replicas"})
        spec["env"] = redact.masked_env(spec["env"], self.spec.secret_env)
        return Agent(
            id=self.id,
            name=self.name,
            type=self.type,
            kind=self.kind,  # type: ignore[arg-type]
            status=shown,
            status_reason=self.status_reason,
            circuit=circuit,
            capabilities=self.spec.capabilities,
            max_concurrency=self.spec.max_concurrency,
            pid=self.pid,
            incarnation=self.incarnation,
            restarts=self.restarts,
            current_tasks=current_tasks,
            tasks_done=self.tasks_done,
            tasks_failed=self.tasks_failed,
            rss_bytes=self.rss_bytes,
            cpu_percent=self.cpu_percent,
            last_heartbeat=self.last_heartbeat,
            created_at=self.created_at,
            config=spec,
            node=self.node,
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LiveAgent:
        """The agent as the last hived left it in the agents table."""
        spec = AgentSpec.model_validate({"name": row["name"], **row["config"]}, context={"stored": True})
        return cls(
            id=row["id"],
            name=row["name"],
            type=row["type"],
            kind=row["kind"],
            spec=spec,
            created_at=row["created_at"],
            status=AgentStatus(row["status"]),
            status_reason=row["status_reason"],
            incarnation=row["incarnation"],
            pid=row["pid"],
            restarts=row["restarts"],
            tasks_done=row["tasks_done"],
            tasks_failed=row["tasks_failed"],
            last_heartbeat=row["last_heartbeat"],
            node=row.get("node"),
        )

    def row(self) -> dict[str, Any]:
        """Its row in the agents table, as it is created."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "status": self.status,
            "capabilities": self.spec.capabilities,
            "max_concurrency": self.spec.max_concurrency,
            "config": self.spec.model_dump(mode="json", exclude={"name", "replicas"}),
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "node": self.node,
        }

    def live_row(self, shown: AgentStatus, now: datetime) -> dict[str, Any]:
        """The fast-changing fields, as the batched flush writes them."""
        return {
            "b_id": self.id,
            "b_status": str(shown),
            "b_reason": self.status_reason,
            "b_hb": self.last_heartbeat,
            "b_rss": self.rss_bytes,
            "b_cpu": self.cpu_percent,
            "b_done": self.tasks_done,
            "b_failed": self.tasks_failed,
            "b_now": now,
        }


def may_take_work(agent: LiveAgent) -> bool:
    """Whether the dispatcher may give this agent work: routable status, not stopping or recycling."""
    return agent.status in ROUTABLE_AGENT and not agent.stopping and not agent.recycling
