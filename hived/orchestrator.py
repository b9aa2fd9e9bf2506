"""AgentOrchestrator: the facade that ties storage, dispatch, supervision and health together (the
PRD's AgentOrchestrator). The API and tests drive the daemon through it."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from hived.agents.heartbeats import HealthMonitor
from hived.agents.manager import AgentManager
from hived.agents.protocol import AgentProtocol
from hived.auth.tokens import Tokens
from hived.bounds import Limits
from hived.errors import Conflict, NotFound
from hived.events import EventBus
from hived.metrics import Metrics
from hived.model import __version__
from hived.model.runs import Run
from hived.model.schemas import Agent, AgentDetail, AgentSpec, Attempt, Status, Task, TaskDetail, TaskSubmit
from hived.model.states import ROUTABLE_AGENT, AgentStatus, TaskStatus
from hived.model.workflow import WorkflowSpec
from hived.store import tasks as task_store
from hived.store import workflows as workflow_store
from hived.store.db import Database
from hived.store.ownership import Ownership
from hived.tasks.dispatcher import Dispatcher, ReadyTask
from hived.workflows.engine import WorkflowEngine
from hived.workflows.service import WorkflowService

log = logging.getLogger("hived")


def task_view(row: dict[str, Any]) -> Task:
    return Task(
        id=row["id"],
        type=row["type"],
        status=row["status"],
        priority=row["priority"],
        requires=row["requires"] or [],
        payload=row["payload"] or {},
        agent_id=row["agent_id"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        result=row["result"],
        error=row["error"],
        idempotency_key=row["idempotency_key"],
        run_id=row["run_id"],
        timeout=(row["options"] or {}).get("timeout"),
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
    )


class AgentOrchestrator:
    def __init__(
        self,
        db_url: str,
        state_dir: Path,
        socket_path: Path | None = None,
        stop_grace: float = 10.0,
        declared: list[AgentSpec] | None = None,
        log_max_bytes: int = 10 * 2**20,
        log_retention: int = 5,
        limits: Limits | None = None,
        standby: bool = False,
    ) -> None:
        self.declared = declared or []
        self.limits = limits or Limits()
        self.state_dir = state_dir
        self.db = Database(db_url)
        self.ownership = Ownership(db_url, self.db.describe())
        self.standby = standby
        self.events = EventBus()
        self.metrics = Metrics()
        self.dispatcher = Dispatcher(self.db, events=self.events, metrics=self.metrics, limits=self.limits)
        self.agents = AgentManager(
            self.db,
            self.dispatcher,
            state_dir,
            socket_path,
            stop_grace=stop_grace,
            events=self.events,
            log_max_bytes=log_max_bytes,
            log_retention=log_retention,
        )
        self.protocol = AgentProtocol(self.agents)
        self.engine = WorkflowEngine(
            self.db, self.events, self._new_row, self._accepted, self.dispatcher.cancel
        )
        self.dispatcher.on_finished.append(self.engine.task_finished)
        self.workflows = WorkflowService(self.db, self.engine, self.limits)
        self.tokens = Tokens(self.db)
        self.health = HealthMonitor(self.agents)
        self.metrics.add_state(self._metric_state)
        self.started = False

    # --- life of the daemon -----------------------------------------------------------------------

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        await self.ownership.acquire(standby=self.standby)
        await self.db.migrate()
        self.db.start()
        await self.tokens.load()
        adopted = await self.agents.load()
        recovered = await self.dispatcher.recover(
            {
                a: (self.agents.agents[a].spec.capabilities, self.agents.agents[a].spec.max_concurrency)
                for a in adopted
            }
        )
        runs = await self.engine.load()
        self.dispatcher.start()
        self.engine.start()
        self.health.start()
        self.ownership.watch(self._lost_database)
        for spec in self.declared:  # the desired state of hived.yaml
            _, action = await self.agents.apply(spec)
            if action != "unchanged":
                log.info("agent %s %s from the config file", spec.name, action)
        self.started = True
        log.info(
            "hived ready: database %s, %d unfinished tasks and %d active runs recovered",
            self.db.describe(),
            recovered,
            runs,
        )

    async def shutdown(self) -> None:
        await self.health.stop()
        await self.engine.stop()
        await self.agents.shutdown()
        await self.dispatcher.stop()
        await self.db.close()
        await self.ownership.release()
        self.started = False

    def _lost_database(self, reason: str) -> None:
        """Another hived owns the database now: stop writing at once, as `kill -9` would. Agents
        live on (their own sessions) and are adopted by the next hived on this host."""
        log.critical("hived stopping at once: %s", reason)
        logging.shutdown()
        os._exit(1)

    # --- agents -----------------------------------------------------------------------------------

    async def register_agent(self, config: dict[str, Any] | AgentSpec, wait: float = 30.0) -> str:
        """Spawn an agent from its spec and wait (up to `wait` s) until it is active; returns its id."""
        spec = config if isinstance(config, AgentSpec) else AgentSpec.model_validate(config)
        agent = await self.agents.create(spec)
        deadline = time.monotonic() + wait
        while agent.status not in ROUTABLE_AGENT and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return agent.id

    async def get_agent(self, ref: str) -> AgentDetail:
        agent = self.agents.resolve(ref)
        return AgentDetail(
            **self.agents.view(agent).model_dump(), incarnations=await self.agents.incarnations(agent)
        )

    def list_agents(self, status: str | None = None, type: str | None = None) -> list[Agent]:
        views = [self.agents.view(a) for a in sorted(self.agents.agents.values(), key=lambda a: a.name)]
        return [v for v in views if (not status or v.status == status) and (not type or v.type == type)]

    # --- tasks ------------------------------------------------------------------------------------

    async def submit_task(self, task: TaskSubmit | dict[str, Any]) -> str:
        return (await self.submit(task)).id

    async def submit(self, task: TaskSubmit | dict[str, Any]) -> Task:
        sub = task if isinstance(task, TaskSubmit) else TaskSubmit.model_validate(task)
        if sub.idempotency_key:
            key = sub.idempotency_key
            existing = await self.db.read(lambda c: task_store.find_by_idempotency_key(c, key))
            if existing is not None:
                return self._same_submission(existing, sub)
        row = self._new_row(sub)
        try:
            await self.db.write(lambda c: task_store.insert_task(c, row))
        except IntegrityError:
            if sub.idempotency_key:  # a concurrent submit with the same key won
                key = sub.idempotency_key
                existing = await self.db.read(lambda c: task_store.find_by_idempotency_key(c, key))
                if existing is not None:
                    return self._same_submission(existing, sub)
            raise
        self._accepted(row)
        return task_view(row)

    async def submit_many(self, subs: list[TaskSubmit]) -> list[Task]:
        """Submit several tasks in one transaction (all or none); keyed ones go one by one."""
        if any(sub.idempotency_key for sub in subs):
            return [await self.submit(sub) for sub in subs]
        rows = [self._new_row(sub) for sub in subs]
        await self.db.write(lambda c: task_store.insert_tasks(c, rows))
        for row in rows:
            self._accepted(row)
        return [task_view(row) for row in rows]

    def _accepted(self, row: dict[str, Any]) -> None:
        self.dispatcher.enqueue(ReadyTask.from_row(row))
        self.metrics.submitted.inc()
        self.events.publish("task.submitted", task_id=row["id"], type=row["type"], priority=row["priority"])

    def _new_row(self, sub: TaskSubmit, run_id: str | None = None) -> dict[str, Any]:
        self.limits.check_payload(sub.payload)
        options = {
            "retry": sub.retry.model_dump(),
            "timeout": sub.timeout,
            "stall_timeout": sub.stall_timeout,
            "success_when": sub.success_when,
        }
        row = {
            "id": str(uuid.uuid4()),
            "seq": self.dispatcher.next_seq(),
            "type": sub.type,
            "priority": sub.priority,
            "status": TaskStatus.PENDING,
            "agent_id": None,
            "requires": sub.requires,
            "payload": sub.payload,
            "result": None,
            "error": None,
            "attempts": 0,
            "max_attempts": sub.max_attempts,
            "lease": None,
            "options": options,
            "idempotency_key": sub.idempotency_key,
            "run_id": run_id,
            "next_attempt_at": None,
            "created_at": datetime.now(UTC),
            "started_at": None,
            "completed_at": None,
        }
        return row

    def _same_submission(self, existing: dict[str, Any], sub: TaskSubmit) -> Task:
        if existing["payload"] != sub.payload or existing["type"] != sub.type:
            raise Conflict(
                f"idempotency_key {sub.idempotency_key!r} was used by task {existing['id']} "
                "with another type or payload"
            )
        return task_view(existing)

    def _resolve_task(self, conn: Any, ref: str) -> dict[str, Any]:
        row = task_store.get_task(conn, ref)
        if row is not None:
            return row
        if len(ref) >= 4 and all(ch in "0123456789abcdef-" for ch in ref):
            query = select(task_store.tasks).where(task_store.tasks.c.id.like(f"{ref}%")).limit(2)
            rows = conn.execute(query).mappings().all()
            if len(rows) == 1:
                return dict(rows[0])
            if len(rows) > 1:
                raise Conflict(f"task id prefix {ref!r} is ambiguous")
        raise NotFound(f"task {ref!r} not found")

    async def get_task(self, ref: str) -> TaskDetail:
        def read(conn: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            row = self._resolve_task(conn, ref)
            return row, task_store.get_attempts(conn, row["id"])

        row, attempts = await self.db.read(read)
        return TaskDetail(
            **task_view(row).model_dump(), attempt_history=[Attempt.model_validate(a) for a in attempts]
        )

    async def list_tasks(
        self,
        status: str | None = None,
        type: str | None = None,
        agent: str | None = None,
        limit: int = 100,
        offset: int = 0,
        run: str | None = None,
    ) -> tuple[list[Task], int]:
        t = task_store.tasks
        query = select(t)
        if status:
            query = query.where(t.c.status == status)
        if type:
            query = query.where(t.c.type == type)
        if agent:
            query = query.where(t.c.agent_id == self.agents.resolve(agent).id)
        if run:
            query = query.where(t.c.run_id == await self.workflows.run_id(run))

        def read(conn: Any) -> tuple[list[Task], int]:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar() or 0
            rows = conn.execute(query.order_by(t.c.seq.desc()).limit(limit).offset(offset))
            return [task_view(dict(r)) for r in rows.mappings()], int(total)

        return await self.db.read(read)

    async def cancel_task(self, ref: str) -> Task:
        row = await self.db.read(lambda c: self._resolve_task(c, ref))
        if TaskStatus(row["status"]).final:
            raise Conflict(f"task {row['id']} is already {row['status']}")
        if not await self.dispatcher.cancel(row["id"]):
            raise Conflict(f"task {row['id']} ended before it could be cancelled")
        return await self.get_task(row["id"])

    async def retry_task(self, ref: str) -> Task:
        row = await self.db.read(lambda c: self._resolve_task(c, ref))
        if TaskStatus(row["status"]) not in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            raise Conflict(
                f"task {row['id']} is {row['status']}: only failed or cancelled tasks can be retried"
            )
        seq = self.dispatcher.next_seq()
        if not await self.db.write(lambda c: task_store.resubmit(c, row["id"], seq)):
            raise Conflict(f"task {row['id']} changed meanwhile; try again")
        fresh = await self.db.read(lambda c: task_store.get_task(c, row["id"]))
        assert fresh is not None
        self.dispatcher.enqueue(ReadyTask.from_row(fresh))
        return task_view(fresh)

    async def task_output(self, task_id: str) -> str:
        attempts = await self.db.read(lambda c: task_store.get_attempts(c, task_id))
        parts = []
        for a in attempts:
            parts.append(f"--- attempt {a['number']} ({a['outcome'] or 'running'})\n")
            parts.append(a["output"] or "")
            if a["output"] and not a["output"].endswith("\n"):
                parts.append("\n")
        return "".join(parts)

    def holder_name(self, task_id: str) -> str | None:
        """The name of the agent holding the task's current attempt (agent tokens' fencing)."""
        entry = self.dispatcher.in_flight.get(task_id)
        return self.agents.name_of(entry.agent_id) if entry else None

    def runs_held_by(self, agent_name: str) -> set[str]:
        """Ids of the runs whose tasks this agent holds now (agent tokens reach only their context)."""
        agent_id = self.agents.by_name.get(agent_name)
        return {
            entry.task.run_id
            for entry in self.dispatcher.in_flight.values()
            if entry.task.run_id and entry.agent_id == agent_id
        }

    # --- workflows --------------------------------------------------------------------------------

    async def execute_workflow(
        self, workflow: WorkflowSpec | dict[str, Any], params: dict[str, Any] | None = None, wait: float = 0.0
    ) -> Run:
        """The PRD's `execute_workflow`: store the template (a new version if it changed), start a
        run, and (with `wait` > 0) wait up to `wait` s for it to end. Returns the run."""
        spec = workflow if isinstance(workflow, WorkflowSpec) else WorkflowSpec.model_validate(workflow)
        await self.workflows.apply(spec)
        run = await self.workflows.execute(spec.name, params or {})
        deadline = time.monotonic() + wait
        while run.id in self.engine.runs and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return await self.workflows.get_run(run.id)

    def _metric_state(self) -> dict[str, Any]:
        by_status = {str(s): 0 for s in AgentStatus}
        for agent in self.agents.agents.values():
            by_status[str(self.agents.shown_status(agent))] += 1
        return {
            "agents": by_status,
            "queue": self.dispatcher.depth_by_priority(),
            "in_flight": len(self.dispatcher.in_flight),
            "database_unavailable": self.db.unavailable,
        }

    async def status(self) -> Status:
        last_event_id = self.events.last_id  # before the reads: events after it are streamed anew
        counts = await self.db.read(task_store.counts_by_status)
        runs = await self.db.read(workflow_store.run_counts)
        by_priority: dict[str, int] = {}
        for (_state, priority), n in self.dispatcher.depth_by_priority().items():
            by_priority[str(priority)] = by_priority.get(str(priority), 0) + n
        by_status: dict[str, int] = {}
        for agent in self.agents.agents.values():  # counted, not viewed: cheap with 500 agents
            status = str(self.agents.shown_status(agent))
            by_status[status] = by_status.get(status, 0) + 1
        return Status(
            version=__version__,
            database=self.db.describe(),
            agents=by_status,
            tasks=counts,
            queue_depth=self.dispatcher.queue_depth(),
            runs=runs,
            queue_by_priority=by_priority,
            last_event_id=last_event_id,
        )
