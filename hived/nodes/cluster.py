"""This hived as a node of a cluster on one PostgreSQL: the parts of hived.nodes, wired into the
daemon's dispatcher, agent manager and services (hived.orchestrator calls `Cluster` at start and
stop; on SQLite there is no cluster)."""

from __future__ import annotations

import logging
from datetime import datetime

from hived.agents.manager import AgentManager
from hived.events import EventBus
from hived.limits.service import LimitsService
from hived.nodes.limits import ClusterLimits
from hived.nodes.membership import Membership
from hived.nodes.placement import Placement
from hived.nodes.relay import Relay
from hived.nodes.schedules import SharedSchedules
from hived.nodes.sharing import Sharing
from hived.schedules.service import SchedulesService
from hived.store import nodes as node_store
from hived.store import schedules as schedule_store
from hived.store.db import Database
from hived.store.wire import Wire
from hived.tasks.dispatcher import Dispatcher
from hived.workflows.engine import WorkflowEngine

log = logging.getLogger("hived.nodes")


class Cluster:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        agents: AgentManager,
        events: EventBus,
        engine: WorkflowEngine,
        db_url: str,
        node: str,
        timeout: float,
    ) -> None:
        self.db, self.node, self.engine = db, node, engine
        self.running = dispatcher.in_flight  # attempts running here: their ends are seen here
        self.wire = Wire(db_url, node)
        self.sharing = Sharing(db, dispatcher, self.wire, events)
        self.relay = Relay(db, self.wire, events, lambda task_id: task_id in engine.by_task)
        engine.driver = node
        self.membership = Membership(db, dispatcher, node, timeout)
        self.membership.events_seen = lambda: events.last_id
        self.relay.peers = self.sharing.peers = lambda: self.membership.peers
        self.relay.alone_mark = lambda: self.membership.alone_mark
        self.placement = Placement(db, agents, node)
        dispatcher.shared = self.sharing
        agents.node = node
        self.membership.lost_handlers.append(self.sharing.take_over)
        self.membership.fenced_ended = self.sharing.end_fenced
        self.membership.lost_handlers.append(self.take_runs)
        self.membership.beat_handlers.append(self.placement.refresh)
        self.membership.beat_handlers.append(self.relay.beat)
        self.membership.beat_handlers.append(self.steps_ended)
        self.limits: ClusterLimits | None = None
        self.schedules: SharedSchedules | None = None

    def share(self, limits: LimitsService, schedules: SchedulesService) -> None:
        """Limits held cluster-wide (hived.nodes.limits); schedules changed on one node reloaded on the
        others (hived.nodes.schedules)."""
        self.limits = ClusterLimits(self.db, self.sharing.dispatcher, limits, self.wire)
        self.sharing.limits = self.limits
        self.schedules = SharedSchedules(schedules, self.wire)

    async def join(self) -> None:
        """Before the agents and tasks are loaded: this node's row, slot and numbers."""
        await self.membership.join()

    async def here(self) -> dict[str, str | None]:
        """Every agent's node, read once at start (whose in-flight attempts are this node's)."""
        return await self.db.read(node_store.placements)

    async def start(self) -> None:
        await self.placement.refresh()
        self.wire.start()
        self.sharing.start()
        self.relay.start()
        self.membership.start()
        if self.limits is not None:
            self.limits.start()
        if self.schedules is not None:
            self.schedules.start()

    async def stop(self) -> None:
        await self.membership.leave()
        if self.limits is not None:
            await self.limits.stop()
        if self.schedules is not None:
            await self.schedules.stop()
        await self.relay.stop()
        await self.sharing.stop()
        await self.wire.stop()

    async def schedule_start(self, name: str, due: datetime, following: datetime | None) -> bool:
        """Whether this node makes a schedule's start due at `due` (once per cluster)."""
        return bool(await self.db.write(lambda c: schedule_store.claim_start(c, name, due, following)))

    async def take_runs(self, lost: str) -> None:
        """A lost node's workflow runs are driven here from now on, resumed from the database."""
        for run_id in await self.db.write(lambda c: node_store.take_runs(c, lost, self.node)):
            await self.engine.load(run_id)
            log.warning("workflow run %s: driven by this node now (node %s was lost)", run_id, lost)

    async def steps_ended(self) -> None:
        """The slow poll behind the relay: tasks the runs here wait for that ended on another node
        (an attempt running here ends here; a task queued here may be taken by another node)."""
        following = [t for t in self.engine.by_task if t not in self.running]  # those end here
        for row in await self.db.read(lambda c: node_store.ended_of(c, following)):
            self.engine.task_finished(row["id"], row["status"], row)
