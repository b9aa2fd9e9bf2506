"""AgentOrchestrator: the composition root. It builds every part of the daemon from its settings
(storage, dispatcher, supervisor, health monitor, workflow engine, and the services the routes call),
runs their life cycle, and keeps the PRD's facade (`register_agent`, `submit_task`, `get_task`,
`execute_workflow`, ...) as thin calls into the services. It holds no rule and writes no SQL."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from hived.agents.heartbeats import HealthMonitor
from hived.agents.manager import AgentManager
from hived.agents.protocol import AgentProtocol
from hived.agents.service import AgentService
from hived.agents.terminals import Terminals
from hived.auth.tokens import Tokens
from hived.bounds import Limits
from hived.clock import SYSTEM_CLOCK
from hived.events import EventBus, RunChanged, TaskEnded
from hived.limits.gate import LimitGate
from hived.limits.service import LimitsService
from hived.metrics import Metrics
from hived.model import __version__
from hived.model.limits import LimitSpec
from hived.model.runs import Run
from hived.model.schemas import Agent, AgentDetail, AgentSpec, Status, Task, TaskDetail, TaskSubmit
from hived.model.states import AgentStatus
from hived.model.usage import Budget
from hived.model.workflow import WorkflowSpec
from hived.nodes.cluster import Cluster
from hived.nodes.membership import FENCE_AFTER
from hived.nodes.service import NodeService
from hived.schedules.service import SchedulesService
from hived.store import tasks as task_store
from hived.store import workflows as workflow_store
from hived.store.db import Database
from hived.store.ownership import Ownership
from hived.tasks.attempt_files import AttemptFiles
from hived.tasks.dispatcher import Dispatcher
from hived.tasks.service import TaskService
from hived.usage.budgets import Budgets
from hived.usage.service import UsageService
from hived.usage.shared import SharedBudgets
from hived.usage.views import UsageViews
from hived.workflows.engine import WorkflowEngine
from hived.workflows.service import WorkflowService

log = logging.getLogger("hived")


class AgentOrchestrator:
    def __init__(
        self,
        db_url: str,
        state_dir: Path,
        socket_path: Path | None = None,
        stop_grace: float = 10.0,
        declared: list[AgentSpec] | None = None,
        declared_limits: list[LimitSpec] | None = None,
        log_max_bytes: int = 10 * 2**20,
        log_retention: int = 5,
        limits: Limits | None = None,
        standby: bool = False,
        budget_per_day: Budget | None = None,
        node: tuple[str, float] = ("", 15.0),  # this node's name and node_timeout (hived.nodes)
    ) -> None:
        self.declared, self.declared_limits = declared or [], declared_limits or []
        self.limits, self.state_dir = limits or Limits(), state_dir
        self.db = Database(db_url, idle_in_transaction=node[1] / 2)  # before the others call it lost
        self.ownership = Ownership(db_url, self.db.describe(), node=node[0])
        self.standby = standby
        self.events = EventBus()
        self.metrics = Metrics()
        gate = LimitGate(lambda: SYSTEM_CLOCK.now().timestamp())
        self.dispatcher = Dispatcher(self.db, events=self.events, limits=self.limits, gate=gate)
        self.limit_service = LimitsService(self.db, gate)
        self.limit_service.wake = self.dispatcher.wake
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
        self.terminals = Terminals(self.db, self.dispatcher, self.agents, self.events)  # tty: true
        self.attempt_files = AttemptFiles(self.db, self.dispatcher, state_dir, self.limits)  # artifacts
        self.protocol.attempt_files = self.attempt_files
        self.tasks = TaskService(self.db, self.dispatcher, self.limits, self.events, self.limit_service)
        self.fleet = AgentService(self.agents, self.dispatcher, self.tasks.controls)
        self.engine = WorkflowEngine(
            self.db, self.events, self.tasks.new_row, self.tasks.accepted, self.dispatcher.cancel
        )
        self.events.subscribe(TaskEnded, self.engine.task_ended)
        self.dispatcher.holding.workflow_of = self._workflow_of
        self.workflows = WorkflowService(self.db, self.engine, self.limits)
        self.tasks.agent_id_of = self.fleet.id_of
        self.tasks.run_id_of = self.workflows.run_id
        self.schedules = SchedulesService(self.db, self.workflows, self.tasks, self.events)
        self.tokens = Tokens(self.db)
        self._usage_slice(budget_per_day)
        self.health = HealthMonitor(self.agents)
        self._nodes_slice(db_url, *node)
        self.metrics.follow(self.events)
        self.metrics.count_throttles(self.events, self.db)
        self.metrics.add_state(self._metric_state)
        self.started = False

    def _usage_slice(self, budget_per_day: Budget | None) -> None:
        """Usage reports and budgets (hived.usage), hooked into the protocol, the views, the dispatch
        holds and the workflow engine."""
        self.usage = UsageService(self.db)
        self.budgets = Budgets(self.db, self.dispatcher, self.engine, budget_per_day)
        self.usage.agent_name = self.agents.name_of
        self.usage.count = self.metrics.count_usage
        self.usage.noted, self.usage.recorded = self.budgets.noted, self.budgets.recorded
        self.budgets.agent_budget = self._agent_budget
        self.protocol.usage = self.usage
        self.tasks.budget_check = self.budgets.check_submit
        views = UsageViews(self.usage)
        views.agent_budget = self._agent_budget
        self.tasks.usage_read, self.tasks.usage_view = views.task_read, views.task
        self.workflows.usage_view, self.fleet.usage_view = views.run, views.agent
        self.events.subscribe(RunChanged, self.budgets.run_changed)

    def _nodes_slice(self, db_url: str, node: str, timeout: float) -> None:
        """Nodes (hived.nodes): on PostgreSQL this hived is one of the nodes of a cluster."""
        self.nodes = NodeService(self.db, node, self._agent_nodes)
        self.cluster = None
        if node:
            parts = (self.db, self.dispatcher, self.agents, self.events, self.engine)
            self.cluster = Cluster(*parts, db_url, node, timeout)
            self.fleet.placement, self.nodes.sharing = self.cluster.placement, self.cluster.sharing
            self.schedules.exclusive = self.cluster.schedule_start
            self.cluster.share(self.limit_service, self.schedules)
            self.usage.recorded = SharedBudgets(self.budgets.recorded, self.cluster.wire).recorded
            self.protocol.fence_after = FENCE_AFTER * timeout  # agents stop their handlers as hived does

    def _agent_budget(self, agent_id: str) -> Budget | None:
        agent = self.agents.agents.get(agent_id)
        return agent.spec.budget if agent is not None else None

    # --- life of the daemon -----------------------------------------------------------------------

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        await self.ownership.acquire(standby=self.standby)
        await self.db.migrate()
        self.db.start()
        if self.cluster is not None:
            await self.cluster.join()
        await self.tokens.load()
        await self.limit_service.load()  # before the tasks: a task waiting on a limit is parked under it
        for limit in self.declared_limits:  # hived.yaml's limits, as `hivectl apply` would set them
            applied = await self.limit_service.apply(limit)
            if applied.action != "unchanged":
                log.info("limit %s %s from the config file", limit.name, applied.action)
        adopted = await self.agents.load()
        await self.tasks.controls.load()
        placed = await self.cluster.here() if self.cluster is not None else {}
        recovered = await self.dispatcher.recover(
            {
                a: (self.agents.agents[a].spec.capabilities, self.agents.agents[a].spec.max_concurrency)
                for a in adopted
            },
            (lambda agent_id: placed.get(agent_id) in (None, self.cluster.node)) if self.cluster else None,
        )
        runs = await self.engine.load()
        await self.budgets.load(list(self.agents.agents))
        await self.tasks.timers.recover()
        self.dispatcher.rehold()  # the runs are known now: pauses by workflow hold their tasks
        self.dispatcher.start()
        self.limit_service.start()
        self.tasks.timers.start()
        self.engine.start()
        await self.schedules.load()  # after the runs: a start missed while down is caught up now
        self.schedules.start()
        self.budgets.start()
        self.health.start()
        self.ownership.watch(self._lost_database)
        if self.cluster is not None:
            await self.cluster.start()
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
        if self.cluster is not None:
            await self.cluster.stop()
        await self.health.stop()
        await self.schedules.stop()
        await self.engine.stop()
        await self.budgets.stop()
        await self.agents.shutdown()
        await self.limit_service.stop()
        await self.tasks.timers.stop()
        await self.dispatcher.stop()
        await self.db.close()
        await self.ownership.release()
        self.started = False

    def _agent_nodes(self) -> dict[str, list[str]]:
        """node -> the names of the agents placed on it (for `hivectl node list`)."""
        placed: dict[str, list[str]] = {}
        for agent in self.fleet.list():
            placed.setdefault(agent.node or "", []).append(agent.name)
        return placed

    def _workflow_of(self, run_id: str) -> str | None:
        run = self.engine.runs.get(run_id)
        return run.workflow if run is not None else None

    def _lost_database(self, reason: str) -> None:
        """Another hived owns the database now: stop writing at once, as `kill -9` would. Agents
        live on (their own sessions) and are adopted by the next hived on this host."""
        log.critical("hived stopping at once: %s", reason)
        logging.shutdown()
        os._exit(1)

    # --- the PRD's facade -------------------------------------------------------------------------

    async def register_agent(self, config: dict[str, Any] | AgentSpec, wait: float = 30.0) -> str:
        """Spawn an agent from its spec and wait (up to `wait` s) until it is active; returns its id."""
        spec = config if isinstance(config, AgentSpec) else AgentSpec.model_validate(config)
        return (await self.fleet.spawn_and_wait(spec, wait)).id

    async def get_agent(self, ref: str) -> AgentDetail:
        return await self.fleet.get(ref)

    def list_agents(self, status: str | None = None, type: str | None = None) -> list[Agent]:
        return self.fleet.list(status, type)

    async def submit_task(self, task: TaskSubmit | dict[str, Any]) -> str:
        return (await self.tasks.submit(task)).id

    async def submit(self, task: TaskSubmit | dict[str, Any]) -> Task:
        return await self.tasks.submit(task)

    async def submit_many(self, subs: list[TaskSubmit]) -> list[Task]:
        return await self.tasks.submit_many(subs)

    async def get_task(self, ref: str) -> TaskDetail:
        return await self.tasks.get(ref)

    async def list_tasks(self, **filters: Any) -> tuple[list[Task], int]:
        return await self.tasks.list(**filters)

    async def cancel_task(self, ref: str) -> Task:
        return await self.tasks.cancel(ref)

    async def retry_task(self, ref: str) -> Task:
        return await self.tasks.retry(ref)

    async def task_output(self, task_id: str) -> str:
        return await self.tasks.output(task_id)

    # --- workflows --------------------------------------------------------------------------------

    async def execute_workflow(
        self, workflow: WorkflowSpec | dict[str, Any], params: dict[str, Any] | None = None, wait: float = 0.0
    ) -> Run:
        """The PRD's `execute_workflow`: store the template (a new version if it changed), start a
        run, and (with `wait` > 0) wait up to `wait` s for it to end. Returns the run."""
        spec = workflow if isinstance(workflow, WorkflowSpec) else WorkflowSpec.model_validate(workflow)
        await self.workflows.apply(spec)
        run = await self.workflows.execute(spec.name, params or {})
        return await self.workflows.get_run(run.id, wait)

    def _metric_state(self) -> dict[str, Any]:
        by_status = {str(s): 0 for s in AgentStatus}
        for agent in self.agents.agents.values():
            by_status[str(self.agents.shown_status(agent))] += 1
        scheduled: dict[int, int] = {}  # by priority: tasks submitted with --delay/--at, not yet due
        for task in self.dispatcher.scheduled:
            scheduled[task.priority] = scheduled.get(task.priority, 0) + 1
        return {
            "agents": by_status,
            "queue": self.dispatcher.depth_by_priority(),
            "scheduled": scheduled,
            "in_flight": len(self.dispatcher.in_flight),
            "waiting_input": sum(1 for entry in self.dispatcher.in_flight.values() if entry.waiting),
            "database_unavailable": self.db.unavailable,
            "limits": self.limit_service.list(),
        }

    async def status(self) -> Status:
        last_event_id = self.events.last_id  # before the reads: events after it are streamed anew
        counts = await self.db.read(task_store.counts_by_status, scan=True)
        runs = await self.db.read(workflow_store.run_counts, scan=True)
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
            paused=self.tasks.controls.pauses(),
            cordoned=self.fleet.cordoned_names(),
        )
