"""The daemon's core in this process, for unit tests: the real store on a SQLite file, a FakeClock,
in-memory agent processes, and the real dispatcher, agent manager and workflow engine wired as
hived wires them. `burst` runs tasks to their end on a pretend agent, like arq's Worker(burst=True)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hived.agents.live import LiveAgent
from hived.agents.manager import AgentManager
from hived.agents.protocol import AgentProtocol
from hived.agents.testing import FakeProcesses
from hived.bounds import Limits
from hived.clock import FakeClock
from hived.events import EventBus, TaskEnded
from hived.limits.gate import LimitGate
from hived.limits.service import LimitsService
from hived.model.schemas import AgentSpec, AttemptResult, Lease, RegisterRequest, TaskSubmit
from hived.store import tasks as task_store
from hived.store.db import Database
from hived.tasks.dispatcher import Dispatcher
from hived.tasks.service import TaskService
from hived.workflows.engine import WorkflowEngine

Handler = Callable[[Lease], tuple[bool, dict[str, Any] | None]]  # lease -> (ok, result)


async def migrated_database(path: Path) -> None:
    """Create a SQLite file with the newest schema (made once per session, then copied per test)."""
    db = Database(f"sqlite:///{path}")
    await db.migrate()
    await db.close()


@dataclass
class Core:
    db: Database
    clock: FakeClock
    events: EventBus
    dispatcher: Dispatcher
    processes: FakeProcesses
    agents: AgentManager
    protocol: AgentProtocol
    engine: WorkflowEngine
    state_dir: Path

    tasks: TaskService
    limit_service: LimitsService

    def new_task_row(self, sub: TaskSubmit, run_id: str | None = None) -> dict[str, Any]:
        """A pending task row, as the daemon builds it on submit (the real task service's)."""
        return self.tasks.new_row(sub, run_id)

    def accepted(self, row: dict[str, Any]) -> None:
        self.tasks.accepted(row)

    async def submit(self, type: str = "job", **fields: Any) -> str:
        """Submit a task (committed, then queued); returns its id."""
        row = self.new_task_row(TaskSubmit(type=type, **fields))
        await self.db.write(lambda c: task_store.insert_task(c, row))
        self.accepted(row)
        return str(row["id"])

    async def task(self, task_id: str) -> dict[str, Any]:
        """The task's row once every write queued so far is committed (some are not awaited)."""
        await self.dispatcher.marks.flush()
        await self.db.write(lambda c: None)
        row = await self.db.read(lambda c: task_store.get_task(c, task_id))
        assert row is not None
        return row

    async def attempts(self, task_id: str) -> list[dict[str, Any]]:
        return await self.db.read(lambda c: task_store.get_attempts(c, task_id))

    async def lease(self, agent_id: str, slots: int = 100) -> list[Lease]:
        """Assign what can be assigned now and take the leases the agent was given."""
        await self.dispatcher.run_pending()
        leases, _ = await self.dispatcher.take(agent_id, slots, 0)
        return leases

    async def burst(self, handler: Handler, agent_id: str = "worker") -> int:
        """Run every ready task on `agent_id` (attached with room for 100) until nothing is left to
        assign and no workflow has work pending; returns how many attempts ran."""
        if agent_id not in self.dispatcher.channels:
            self.dispatcher.attach(agent_id, [], 100)
        ran = 0
        while True:
            await self.engine.idle()
            leases = await self.lease(agent_id)
            if not leases:
                return ran
            results = []
            for lease in leases:
                ok, result = handler(lease)
                error = None if ok else "the handler failed"
                results.append(
                    AttemptResult(
                        task_id=lease.task_id,
                        attempt=lease.attempt,
                        lease=lease.lease,
                        ok=ok,
                        result=result,
                        error=error,
                    )
                )
            await self.dispatcher.report(agent_id, results)
            ran += len(results)


def result(lease: Lease, ok: bool = True, lease_number: int | None = None) -> AttemptResult:
    """What an agent reports for `lease`: success with {"done": True}, or failure "boom"; under
    another lease number when `lease_number` is given."""
    return AttemptResult(
        task_id=lease.task_id,
        attempt=lease.attempt,
        lease=lease.lease if lease_number is None else lease_number,
        ok=ok,
        result={"done": True} if ok else None,
        error=None if ok else "boom",
    )


def done(lease: Lease) -> tuple[bool, dict[str, Any] | None]:
    """A handler whose every task succeeds and echoes its payload."""
    return True, {"echo": lease.payload}


@asynccontextmanager
async def core(template: Path, tmp: Path) -> AsyncIterator[Core]:
    """A Core on a copy of the migrated template database; everything stopped afterwards."""
    shutil.copy(template, tmp / "hive.db")
    db = Database(f"sqlite:///{tmp / 'hive.db'}")
    db.start()
    clock = FakeClock()
    events = EventBus(clock=clock)
    gate = LimitGate(lambda: clock.now().timestamp())
    dispatcher = Dispatcher(db, clock=clock, events=events, gate=gate)
    limit_service = LimitsService(db, gate, clock)
    limit_service.wake = dispatcher.wake
    processes = FakeProcesses(clock)
    agents = AgentManager(db, dispatcher, tmp, None, events=events, clock=clock, processes=processes)
    box: dict[str, Core] = {}
    engine = WorkflowEngine(
        db,
        events,
        lambda sub, run_id: box["core"].new_task_row(sub, run_id),
        lambda row: box["core"].accepted(row),
        dispatcher.cancel,
        clock=clock,
    )
    events.subscribe(TaskEnded, engine.task_ended)
    dispatcher.holding.workflow_of = lambda run_id: run.workflow if (run := engine.runs.get(run_id)) else None
    tasks = TaskService(db, dispatcher, Limits(), events, limit_service, clock=clock.now)
    box["core"] = made = Core(
        db, clock, events, dispatcher, processes, agents, AgentProtocol(agents), engine, tmp, tasks,
        limit_service,
    )
    try:
        yield made
    finally:
        await engine.stop()
        for agent in list(agents.agents.values()):
            for task in (agent.watcher, agent.pending_restart):
                if task is not None and not task.done():
                    task.cancel()
        await dispatcher.stop()
        await asyncio.sleep(0)
        await db.close()


async def spawn(hive: Core, **spec: Any) -> LiveAgent:
    """A spawned agent that started and registered (active), with restart delays without jitter."""
    spec = {"name": "w", "handler": {"exec": ["true"]}, **spec}
    agent = await hive.agents.create(AgentSpec.model_validate(spec))
    agent.backoff.rand = lambda: 0.5  # the middle of the jitter band: delays exactly as configured
    await register(hive, agent)
    return agent


async def register(hive: Core, agent: LiveAgent) -> None:
    """The agent's current process registers, as hive-agent does on start."""
    proc = hive.processes.current(agent.id)
    request = RegisterRequest(agent_id=agent.id, incarnation=agent.incarnation, pid=proc.pid, hostname="h")
    await hive.protocol.register(request)
    assert agent.status == "active" and hive.agents.shown_status(agent) == "active"


class ChangedDuringRead:
    """The store, but its first read returns what was read before the change `then` makes here (a
    node's reload crossing its own API's change: hived.nodes)."""

    def __init__(self, db: Any, then: Callable[[], Any]) -> None:
        self.db, self.then, self.reads = db, then, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    async def read(self, fn: Any) -> Any:
        found = await self.db.read(fn)
        self.reads += 1
        if self.reads == 1:
            await self.then()
        return found
