"""Interactive attempts (`tty: true` exec handlers), hived's side.

The agent reports where an attempt's tmux session is (`started`: host, socket, session), and when
the handler waits at its prompt (`waiting`: the task becomes `waiting_input`, event
`task.waiting_input`) or goes on (`running`: back to `running`, event `task.input_received`).
`hivectl task send` queues a line for the agent that runs the attempt; it rides the agent's
long-poll like a cancel. What the terminal of a running task is (`hivectl task attach`) is kept in
memory with the attempt (it matters only while the attempt runs); every report of the agent carries
it, so a hived restarted meanwhile knows it again at the next prompt.
"""

from __future__ import annotations

import logging
from typing import Any

from hived.agents.manager import AgentManager
from hived.errors import Conflict, NotFound
from hived.events import EventBus
from hived.model.states import TaskStatus
from hived.model.terminals import Terminal, TerminalReport
from hived.store import tasks as task_store
from hived.store.db import Database
from hived.tasks.attempts import InFlight
from hived.tasks.dispatcher import Dispatcher

log = logging.getLogger("hived.terminals")
T = TaskStatus


class Terminals:
    def __init__(self, db: Database, dispatcher: Dispatcher, agents: AgentManager, events: EventBus) -> None:
        self.db, self.dispatcher, self.agents, self.events = db, dispatcher, agents, events

    async def report(self, agent_id: str, req: TerminalReport) -> dict[str, Any]:
        agent = self.agents.agents.get(agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id} not found")
        if req.incarnation != agent.incarnation:
            raise Conflict(f"agent {agent.name}: incarnation {req.incarnation} is not the current one")
        entry = self.dispatcher.in_flight.get(req.task_id)
        if entry is None or entry.agent_id != agent_id or entry.lease != req.lease or entry.ending:
            return {"accepted": False, "reason": "stale: the attempt has ended or moved"}
        if req.socket and req.session:  # every report says it: a restarted hived learns it again
            entry.terminal = {"host": req.host or "", "socket": req.socket, "session": req.session}
        if req.event == "started":
            return {"accepted": True}
        waiting = req.event == "waiting"
        if entry.waiting != waiting and entry.delivered:
            await self._move(entry, waiting, agent.name, req.prompt)
        return {"accepted": True}

    async def _move(self, entry: InFlight, waiting: bool, agent: str, prompt: str | None) -> None:
        new = entry.status.transition(T.WAITING_INPUT if waiting else T.RUNNING)
        task_id, lease = entry.task.id, entry.lease
        if not await self.db.write(lambda c: task_store.set_interactive(c, task_id, lease, new)):
            return
        entry.waiting = waiting
        if waiting:
            log.info("task %s: waiting for input on agent %s", task_id, agent)
            self.events.publish("task.waiting_input", task_id=task_id, agent_id=entry.agent_id, prompt=prompt)
        else:
            self.events.publish("task.input_received", task_id=task_id, agent_id=entry.agent_id)

    def _interactive(self, task_id: str, status: str) -> InFlight:
        """The attempt in flight of an interactive task, or a Conflict saying why there is none."""
        entry = self.dispatcher.in_flight.get(task_id)
        if status not in (T.RUNNING, T.WAITING_INPUT) or entry is None or not entry.delivered:
            raise Conflict(f"task {task_id} is {status}: only a running interactive task takes input")
        agent = self.agents.agents.get(entry.agent_id)
        handler = agent.spec.handler if agent is not None else None
        if handler is None or not handler.tty:
            name = agent.name if agent is not None else entry.agent_id
            raise Conflict(
                f"task {task_id} is not interactive: its agent {name} has no `tty: true` exec handler"
            )
        return entry

    def send(self, task_id: str, status: str, text: str) -> None:
        """Queue `text` (then Enter) for the terminal of the task's running attempt."""
        entry = self._interactive(task_id, status)
        channel = self.dispatcher.channels.get(entry.agent_id)
        if channel is None:
            raise Conflict(f"task {task_id}: its agent is not connected")
        channel.inputs.append({"task_id": task_id, "text": text})
        channel.wake.set()
        self.events.publish("task.input_sent", task_id=task_id, agent_id=entry.agent_id, chars=len(text))

    def terminal(self, task_id: str, status: str) -> Terminal:
        entry = self._interactive(task_id, status)
        if entry.terminal is None:
            raise Conflict(f"task {task_id}: its terminal session has not started yet")
        agent = self.agents.name_of(entry.agent_id) or entry.agent_id
        return Terminal(task_id=task_id, status=status, agent=agent, **entry.terminal)
