"""The agent registry and supervisor: spawned agents are started, watched, restarted with backoff
and stopped; external agents register over the API; heartbeats are checked here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from pathlib import Path
from typing import Any

from hived import redact
from hived.agents import logs
from hived.agents.container import launch_of
from hived.agents.live import LiveAgent, may_take_work
from hived.agents.podman import HostProcesses
from hived.agents.process import AgentProcess, Exit, Processes, describe_end, exit_of
from hived.agents.workspaces import attempt_folders
from hived.clock import SYSTEM_CLOCK, Clock
from hived.errors import Conflict, NotFound
from hived.events import AgentRestarted, AgentStatusChanged, EventBus, TaskEnded
from hived.model import paths
from hived.model.schemas import Agent, AgentSpec, Incarnation
from hived.model.states import ROUTABLE_AGENT, AgentStatus, TaskStatus
from hived.store import agents as agent_store
from hived.store.db import Database
from hived.tasks.dispatcher import Dispatcher

log = logging.getLogger("hived.agents")
S = AgentStatus
SHUTDOWN_REASON = "hived shut down"


class AgentManager:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        state_dir: Path,
        socket_path: Path | None,
        stop_grace: float = 10.0,
        log_max_bytes: int = 10 * 2**20,
        log_retention: int = 5,
        events: EventBus | None = None,
        clock: Clock = SYSTEM_CLOCK,
        processes: Processes | None = None,
    ) -> None:
        self.events = events or dispatcher.events
        self.clock = clock
        self.processes: Processes = processes or HostProcesses()
        self.log_max_bytes = log_max_bytes
        self.log_retention = log_retention
        self.db = db
        self.dispatcher = dispatcher
        self.state_dir = state_dir
        self.socket_path = socket_path
        self.stop_grace = stop_grace
        self.agents: dict[str, LiveAgent] = {}
        self.by_name: dict[str, str] = {}
        self.node: str | None = None  # this hived's node (hived.nodes): it supervises only its own
        self.events.subscribe(TaskEnded, self._count_result)

    # --- lookup and views -------------------------------------------------------------------------

    def name_of(self, ref: str) -> str | None:
        """The name of the agent with this exact id or name (the agent protocol uses full ids)."""
        agent = self.agents.get(ref) or self.agents.get(self.by_name.get(ref, ""))
        return agent.name if agent else None

    def resolve(self, ref: str) -> LiveAgent:
        """An agent by id, name or unique id prefix."""
        if ref in self.agents:
            return self.agents[ref]
        if ref in self.by_name:
            return self.agents[self.by_name[ref]]
        matches = [a for a in self.agents.values() if a.id.startswith(ref)] if len(ref) >= 4 else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise Conflict(f"agent id prefix {ref!r} is ambiguous ({len(matches)} agents)")
        raise NotFound(f"agent {ref!r} not found")

    def shown_status(self, agent: LiveAgent) -> AgentStatus:
        if agent.status in ROUTABLE_AGENT:
            return S.BUSY if self.dispatcher.held_by(agent.id) else S.ACTIVE
        return agent.status

    def set_status(self, agent: LiveAgent, status: AgentStatus, reason: str | None) -> None:
        """The one way an agent's status changes: checked against the transition table, published."""
        previous = agent.status
        previous.transition(status)
        agent.status, agent.status_reason, agent.dirty = status, reason, True
        self.route(agent)
        if previous != status or reason:
            self.events.publish(AgentStatusChanged(agent.name, agent.id, str(status), str(previous), reason))

    def route(self, agent: LiveAgent) -> None:
        """Tell the dispatcher whether this agent may be given work, by the one rule for it."""
        self.dispatcher.set_routable(agent.id, may_take_work(agent))

    def circuit(self, agent: LiveAgent) -> str:
        channel = self.dispatcher.channels.get(agent.id)
        return str(channel.breaker.state(self.clock.monotonic())) if channel else "closed"

    def view(self, agent: LiveAgent) -> Agent:
        return agent.view(self.shown_status(agent), self.circuit(agent), self.dispatcher.held_by(agent.id))

    async def incarnations(self, agent: LiveAgent) -> list[Incarnation]:
        rows = await self.db.read(lambda c: agent_store.get_incarnations(c, agent.id))
        return [Incarnation.model_validate(r) for r in rows]

    def log_path(self, agent: LiveAgent, incarnation: int | None = None) -> Path:
        return logs.incarnation_log(self.state_dir, agent.name, incarnation or agent.incarnation)

    def workdir(self, agent: LiveAgent) -> str:
        return agent.spec.workdir or str(paths.agent_dir(self.state_dir, agent.name) / "work")

    # --- lifecycle --------------------------------------------------------------------------------

    async def load(self) -> list[str]:
        """Agents of the last run. Spawned agents whose process still runs are adopted (they reconnect
        and keep their tasks); the others are started again; external ones wait to re-register.
        Returns the ids of adopted agents."""
        adopted = []
        rows = await self.db.read(agent_store.all_agents)
        for row in rows:
            if self.node is not None and row.get("node") not in (None, self.node):
                continue  # another node's (hived.nodes.placement shows it)
            agent = LiveAgent.from_row(row)
            self._add(agent)
            if agent.kind == "external":
                agent.pid = None
                if agent.status != S.STOPPED:
                    self.set_status(agent, S.LOST, "waiting for it to register again")
                continue
            wanted = agent.status not in (S.STOPPED, S.FAILED) or agent.status_reason == SHUTDOWN_REASON
            if agent.pid and agent.status not in (S.STOPPED, S.FAILED):
                if proc := self.processes.adopt(agent.pid, agent.id, agent.incarnation):
                    self._adopt(agent, proc)
                    adopted.append(agent.id)
                    continue
                await self.processes.sweep(agent.id, agent.name, agent.incarnation)
                await self._end_incarnation(agent, Exit(None, None), "process gone while hived was down")
            if wanted:
                await self.start(agent)
        return adopted

    def _adopt(self, agent: LiveAgent, proc: AgentProcess) -> None:
        agent.proc, agent.pid = proc, proc.pid
        self.set_status(agent, S.STARTING, "adopted after a hived restart; waiting for it")
        agent.started_mono = self.clock.monotonic()
        agent.watcher = asyncio.create_task(self._watch(agent, proc, agent.incarnation))
        log.info("agent %s: adopted running pid %d (incarnation %d)", agent.name, proc.pid, agent.incarnation)

    def _add(self, agent: LiveAgent) -> None:
        self.agents[agent.id] = agent
        self.by_name[agent.name] = agent.id

    async def create(self, spec: AgentSpec, kind: str = "spawned") -> LiveAgent:
        if spec.name in self.by_name:
            raise Conflict(f"agent {spec.name!r} already exists")
        if kind == "spawned" and spec.handler is None:
            raise Conflict("a spawned agent needs a handler (exec or python)")
        agent = LiveAgent(
            id=str(uuid.uuid4()),
            name=spec.name,
            type=spec.type or spec.name,
            kind=kind,
            spec=spec,
            created_at=self.clock.now(),
            node=self.node,
        )
        self._add(agent)
        row = agent.row()
        try:
            await self.db.write(lambda c: agent_store.insert_agent(c, row))
        except Exception:
            self.agents.pop(agent.id, None)
            self.by_name.pop(agent.name, None)
            raise
        if kind == "spawned":
            await self.start(agent)
        return agent

    async def apply(self, spec: AgentSpec) -> tuple[LiveAgent, str]:
        """Create the agent, or bring an existing one to `spec` (restarting it when it changed)."""
        if spec.name not in self.by_name:
            return await self.create(spec), "created"
        agent = self.agents[self.by_name[spec.name]]
        if agent.spec == spec:
            return agent, "unchanged"
        if agent.kind != "spawned":
            raise Conflict(f"agent {spec.name!r} is external: it is configured where it runs")
        agent.spec, agent.type = spec, spec.type or spec.name
        redact.remember_env(spec.env, spec.secret_env)
        config = spec.model_dump(mode="json", exclude={"name", "replicas"})
        await self.db.write(
            lambda c: agent_store.update_agent(
                c,
                agent.id,
                type=agent.type,
                capabilities=spec.capabilities,
                max_concurrency=spec.max_concurrency,
                config=config,
            )
        )
        await self.restart(agent, reason="configuration changed")
        return agent, "configured"

    async def start(self, agent: LiveAgent) -> None:
        agent.incarnation += 1
        agent.incarnation_tasks, agent.recycle_reason = 0, None
        agent.rss_bytes = agent.cpu_percent = None  # the last incarnation's: not to be judged by them
        agent.stopping = False
        self.set_status(agent, S.STARTING, None)
        agent.started_mono = self.clock.monotonic()
        number = agent.incarnation
        started = self.clock.now()
        await self.db.write(lambda c: agent_store.start_incarnation(c, agent.id, number, None, None, started))
        logs.prune(self.state_dir, agent.name, keep=max(0, self.log_retention - 1))
        bound = {"HIVE_AGENT_LOG_MAX_BYTES": str(self.log_max_bytes)}  # the agent caps its own writes
        bound["HIVE_AGENT_DIR"] = str(paths.agent_dir(self.state_dir, agent.name))  # its tmux socket
        folders = attempt_folders(agent, self.state_dir) if agent.spec.runtime else ()  # mounted too
        launch = launch_of(agent.spec.runtime, self.workdir(agent), self.state_dir, folders)  # or None
        log_path = self.log_path(agent)
        proc = await self.processes.spawn(agent.id, number, log_path, bound, self.socket_path, launch)
        agent.proc, agent.pid = proc, proc.pid
        await self.db.write(lambda c: self._record_start(c, agent, number, proc.pid))
        agent.watcher = asyncio.create_task(self._watch(agent, proc, number), name=f"watch-{agent.name}")
        log.info("agent %s: started incarnation %d, pid %d", agent.name, number, proc.pid)

    def _record_start(self, conn: Any, agent: LiveAgent, number: int, pid: int) -> None:
        agent_store.set_incarnation_pid(conn, agent.id, number, pid)
        agent_store.update_agent(
            conn,
            agent.id,
            pid=pid,
            incarnation=number,
            status=S.STARTING,
            status_reason=None,
            restarts=agent.restarts,
        )

    async def _watch(self, agent: LiveAgent, proc: AgentProcess, number: int) -> None:
        returncode = await proc.wait()
        if agent.proc is proc:
            agent.proc = None  # nothing left to signal (its pid is shown until its status changes)
        await self.processes.sweep(agent.id, agent.name, number)  # before its tasks are retried elsewhere
        if agent.incarnation != number:
            return
        outcome = exit_of(returncode) if returncode is not None else Exit(None, None)
        reason = agent.status_reason if agent.status == S.UNHEALTHY else describe_end(proc, outcome)
        if agent.recycling:
            reason = f"recycled: {agent.recycle_reason}"
        log.info("agent %s: incarnation %d %s", agent.name, number, outcome.describe())
        await self._end_incarnation(agent, outcome, reason or outcome.describe())
        await self.dispatcher.agent_gone(agent.id, error=f"agent {agent.name} {reason}")
        agent.pid = None  # with the status, in one step: never shown `active` without a process
        if agent.stopping or agent.id not in self.agents:
            self.set_status(agent, S.STOPPED, agent.status_reason or reason)
            return
        self._after_crash(agent, outcome, reason or "")

    async def _end_incarnation(self, agent: LiveAgent, outcome: Exit, reason: str) -> None:
        ended, number = self.clock.now(), agent.incarnation
        await self.db.write(
            lambda c: agent_store.end_incarnation(
                c, agent.id, number, ended, outcome.code, outcome.signal, reason
            )
        )

    def _after_crash(self, agent: LiveAgent, outcome: Exit, reason: str) -> None:
        policy, started, now = agent.spec.restart, agent.started_mono, self.clock.monotonic()
        if agent.recycling:
            verdict = agent.backoff.after_recycle(policy, started, now, agent.idle_over_memory())
        else:
            verdict = agent.backoff.after_exit(
                policy, outcome.clean, agent.status == S.UNHEALTHY, started, now
            )
        if verdict.action == "stop":
            self.set_status(agent, S.STOPPED, reason)
        elif verdict.action == "fail":
            self.set_status(
                agent, S.FAILED, f"{verdict.detail}; last: {reason}" if verdict.detail else reason
            )
            if verdict.detail:
                log.warning("agent %s: failed (%s)", agent.name, agent.status_reason)
        else:
            self.set_status(agent, S.STARTING, f"restarting in {verdict.delay:.1f}s after: {reason}")
            agent.pending_restart = asyncio.create_task(self._restart_later(agent, verdict.delay))

    async def _restart_later(self, agent: LiveAgent, delay: float) -> None:
        await self.clock.sleep(delay)
        if agent.stopping or agent.id not in self.agents:
            return
        agent.restarts += 1
        self.events.publish(AgentRestarted(agent.id))
        await self.start(agent)

    async def drain(self, agent: LiveAgent, timeout: float) -> bool:
        """Stop giving the agent work and wait (up to `timeout`) for what it runs; True if it emptied."""
        self.set_status(agent, S.DRAINING, None)
        deadline = self.clock.monotonic() + timeout
        while self.dispatcher.held_by(agent.id) and agent.proc:
            left = deadline - self.clock.monotonic()
            if left <= 0:
                break
            released = self.dispatcher.released
            released.clear()
            await self.clock.wait(released, left)
        return not self.dispatcher.held_by(agent.id)

    async def stop(self, agent: LiveAgent, drain: bool = False, timeout: float = 60.0) -> None:
        if drain and agent.status in ROUTABLE_AGENT:
            await self.drain(agent, timeout)
        agent.stopping = True
        if agent.pending_restart:
            agent.pending_restart.cancel()
        self.route(agent)
        if agent.proc is not None:
            await self.processes.stop(agent.proc, self.stop_grace)
        if agent.watcher is not None and not agent.watcher.done():
            # also when the process has just died and its end is being recorded: a start before the
            # watcher is done would race its restart
            with contextlib.suppress(asyncio.CancelledError):
                await agent.watcher
        if agent.kind == "external":
            await self.dispatcher.agent_gone(agent.id, error=f"agent {agent.name} was stopped")
        agent.pid = None
        self.set_status(agent, S.STOPPED, "stopped by operator")

    async def restart(self, agent: LiveAgent, reason: str = "restarted by operator") -> None:
        if agent.kind != "spawned":
            raise Conflict(f"agent {agent.name!r} is external: restart it where it runs")
        await self.stop(agent, drain=agent.status in ROUTABLE_AGENT, timeout=30.0)
        agent.backoff.reset()
        agent.restarts += 1
        await self.start(agent)
        agent.status_reason = reason

    async def delete(self, agent: LiveAgent, drain: bool, timeout: float) -> Agent:
        await self.stop(agent, drain=drain, timeout=timeout)
        view = self.view(agent)
        self.agents.pop(agent.id, None)
        self.by_name.pop(agent.name, None)
        self.dispatcher.channels.pop(agent.id, None)
        await self.db.write(lambda c: agent_store.delete_agent(c, agent.id))
        return view

    async def shutdown(self) -> None:
        running = [a for a in self.agents.values() if a.proc is not None or a.pending_restart]
        await asyncio.gather(*(self.stop(a) for a in running), return_exceptions=True)
        for agent in running:
            agent.status_reason = SHUTDOWN_REASON
        await self.flush()

    def recycle(self, agent: LiveAgent, reason: str) -> None:
        """Drain the agent and end its process (periodic restarts against leaks). What follows is the
        restart policy's call, as after a crash: a restart after its delay, or `failed` at its limit."""
        if agent.recycling or agent.kind != "spawned":
            return
        agent.recycle_reason = reason
        self.route(agent)
        log.info("agent %s: recycling (%s)", agent.name, reason)
        asyncio.create_task(self._recycle(agent), name=f"recycle-{agent.name}")

    async def _recycle(self, agent: LiveAgent) -> None:
        if agent.status in ROUTABLE_AGENT:
            await self.drain(agent, timeout=30.0)
        if agent.proc is not None and not agent.stopping:
            await self.processes.stop(agent.proc, self.stop_grace)  # its watcher asks the policy

    async def rotate_logs(self) -> None:
        """Rotate the live logs over `log_max_bytes`, in a worker thread (copies are slow)."""
        live = [self.log_path(a) for a in self.agents.values() if a.kind == "spawned" and a.incarnation]
        await asyncio.to_thread(logs.rotate_all, live, self.log_max_bytes)

    # --- persistence of the fast-changing fields ---------------------------------------------------

    def _count_result(self, ended: TaskEnded) -> None:
        agent = self.agents.get(ended.agent_id or "")
        if agent is not None:
            agent.incarnation_tasks += 1
            if ended.status == TaskStatus.COMPLETED:
                agent.tasks_done += 1
            elif ended.status == TaskStatus.FAILED:
                agent.tasks_failed += 1
            agent.dirty = True

    async def flush(self) -> None:
        """Write status, heartbeat, resources and counters of agents that changed, in one batch."""
        stamp = self.clock.now()
        rows = []
        for agent in self.agents.values():
            if agent.dirty:
                agent.dirty = False
                rows.append(agent.live_row(self.shown_status(agent), stamp))
        if rows:
            await self.db.write(lambda c: agent_store.flush_live(c, rows))
