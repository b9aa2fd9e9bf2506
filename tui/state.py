"""What the dashboard knows about the hive, and how events change it. Pure: snapshots (API objects as
dicts) and events (the JSON of `/events`) in, dirty row keys out; no I/O, no widgets, so it is tested
without a terminal. The app draws only the rows this module marks dirty, in batches."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

MAX_TASKS = 1000  # recent tasks kept for the queue pane
MAX_EVENTS = 2000
HISTORY = 120  # sparkline samples (one per sample tick: 2 s -> the last 4 minutes)
FINAL_TASK = ("completed", "failed", "cancelled")
FINAL_RUN = ("succeeded", "failed", "cancelled")
FINAL_STEP = ("succeeded", "failed", "skipped", "cancelled")


@dataclass
class Dirty:
    agents: set[str] = field(default_factory=set)
    tasks: set[str] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)
    removed_agents: set[str] = field(default_factory=set)
    limits: set[str] = field(default_factory=set)
    removed_limits: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)
    removed_nodes: set[str] = field(default_factory=set)
    queue: bool = False

    def __bool__(self) -> bool:
        return bool(
            self.agents
            or self.tasks
            or self.runs
            or self.removed_agents
            or self.limits
            or self.removed_limits
            or self.nodes
            or self.removed_nodes
            or self.queue
        )


@dataclass
class Fleet:
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: collections.OrderedDict[str, dict[str, Any]] = field(default_factory=collections.OrderedDict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)  # by name
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # by name (GET /nodes)
    paused: list[dict[str, Any]] = field(default_factory=list)  # the queue's pauses (GET /status)
    task_counts: dict[str, int] = field(default_factory=dict)
    queue_depth: int = 0
    depth_by_priority: dict[str, int] = field(default_factory=dict)
    events: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_EVENTS)
    )
    depth_history: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=HISTORY))
    done_history: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=HISTORY))
    last_event_id: int = 0
    ended_since_sample: int = 0
    dirty: Dirty = field(default_factory=Dirty)

    # --- snapshots (GET /agents, /status, /tasks, /runs, /limits, /nodes) -------------------------

    def load_agents(self, items: list[dict[str, Any]]) -> None:
        seen = {a["id"] for a in items}
        for gone in set(self.agents) - seen:
            del self.agents[gone]
            self.dirty.removed_agents.add(gone)
        for agent in items:
            if self.agents.get(agent["id"]) != agent:
                self.agents[agent["id"]] = agent
                self.dirty.agents.add(agent["id"])

    def load_status(self, status: dict[str, Any]) -> None:
        self.task_counts = dict(status.get("tasks", {}))
        self.queue_depth = int(status.get("queue_depth", 0))
        self.depth_by_priority = dict(status.get("queue_by_priority", {}))
        self.paused = list(status.get("paused") or [])
        self.dirty.queue = True

    def load_limits(self, items: list[dict[str, Any]]) -> None:
        """Limits are not events: the whole list, read again now and then."""
        _load_named(self.limits, items, self.dirty.limits, self.dirty.removed_limits)

    def load_nodes(self, items: list[dict[str, Any]]) -> None:
        """Nodes are not events either (a node's heartbeat, drain or loss): the whole list, read
        again now and then."""
        _load_named(self.nodes, items, self.dirty.nodes, self.dirty.removed_nodes)

    def load_tasks(self, items: list[dict[str, Any]]) -> None:
        for task in reversed(items):  # the API lists newest first
            self._put_task(task)

    def load_queued(self, items: list[dict[str, Any]]) -> None:
        """Queued tasks read again (pending, scheduled; newest first, as the API lists them): why they
        wait and whether they are due are not events. Rows that changed are redrawn in place."""
        for task in reversed(items):
            known = self.tasks.get(task["id"])
            if known is None or any(known.get(k) != v for k, v in task.items()):
                self._put_task(task)

    def load_runs(self, items: list[dict[str, Any]]) -> None:
        for run in items:
            self.runs[run["id"]] = run
            self.dirty.runs.add(run["id"])

    def _put_task(self, task: dict[str, Any]) -> None:
        known = self.tasks.get(task["id"])
        self.tasks[task["id"]] = {**known, **task} if known else task
        self.dirty.tasks.add(task["id"])
        while len(self.tasks) > MAX_TASKS:
            self.tasks.popitem(last=False)

    # --- events -----------------------------------------------------------------------------------

    def apply(self, event: dict[str, Any]) -> None:
        """One event of `/events`; ids seen before (a resumed stream) are ignored."""
        event_id = int(event.get("id", 0))
        if event_id and event_id <= self.last_event_id:
            return
        self.last_event_id = max(self.last_event_id, event_id)
        self.events.append(event)
        kind = str(event.get("kind", ""))
        noun, _, verb = kind.partition(".")
        if noun == "agent":
            self._agent_event(event)
        elif noun == "task":
            self._task_event(verb, event)
        elif noun == "run":
            self._run_event(verb, event)
        elif noun == "step":
            self._step_event(verb, event)

    def _agent_event(self, event: dict[str, Any]) -> None:
        agent = self.agents.get(str(event.get("agent_id")))
        if agent is not None and event.get("status"):
            agent["status"] = event["status"]
            agent["status_reason"] = event.get("reason")
            self.dirty.agents.add(agent["id"])

    def _task_event(self, verb: str, event: dict[str, Any]) -> None:
        task_id = str(event.get("task_id"))
        if verb == "submitted":
            self._put_task(
                {
                    "id": task_id,
                    "type": event.get("type"),
                    "priority": event.get("priority"),
                    "status": "pending",
                    "agent_id": None,
                    "attempts": 0,
                }
            )
            self._count("pending", +1)
            return
        task = self.tasks.get(task_id)
        previous = task.get("status") if task else None
        if verb == "input_sent":
            return  # a line typed into an interactive task: no change of status
        status = "running" if verb == "input_received" else verb
        if task is not None:
            task["prompt"] = event.get("prompt")  # task.waiting_input: the line it waits at
            task["status"] = status
            task["waiting_reason"] = None  # it left the queue (or is back after a retry: re-read)
            task["agent_id"] = event.get("agent_id") or task.get("agent_id")
            if event.get("error"):
                task["error"] = event["error"]
            if "attempt" in event:
                task["attempts"] = event["attempt"]
            self.dirty.tasks.add(task_id)
        if status in FINAL_TASK:
            self.ended_since_sample += 1
            if previous:
                self._count(previous, -1)
            self._count(status, +1)

    def _count(self, status: str, delta: int) -> None:
        self.task_counts[status] = max(0, self.task_counts.get(status, 0) + delta)
        if status == "pending":
            self.queue_depth = max(0, self.queue_depth + delta)
        self.dirty.queue = True

    def _run_event(self, verb: str, event: dict[str, Any]) -> None:
        run = self.runs.get(str(event.get("run_id")))
        if run is None:
            run = {
                "id": event.get("run_id"),
                "workflow": event.get("workflow", "?"),
                "steps": [],
                "status": verb,
                "version": None,
                "created_at": event.get("time"),
            }
            self.runs[run["id"]] = run
        run["status"] = verb
        self.dirty.runs.add(run["id"])

    def _step_event(self, verb: str, event: dict[str, Any]) -> None:
        run = self.runs.get(str(event.get("run_id")))
        if run is None:
            return  # the next snapshot of runs brings it
        for step in run.get("steps", []):
            if step["id"] == event.get("step_id"):
                step["status"] = verb
                step["task_id"] = event.get("task_id") or step.get("task_id")
                step["agent_id"] = event.get("agent_id") or step.get("agent_id")
                break
        else:
            run.setdefault("steps", []).append(
                {
                    "id": event.get("step_id"),
                    "status": verb,
                    "type": "?",
                    "task_id": event.get("task_id"),
                    "needs": [],
                }
            )
        self.dirty.runs.add(run["id"])

    # --- sampling and handing out what changed ----------------------------------------------------

    def sample(self) -> None:
        """One point of the sparklines: queue depth now, tasks ended since the last sample."""
        self.depth_history.append(float(self.queue_depth))
        self.done_history.append(float(self.ended_since_sample))
        self.ended_since_sample = 0
        self.dirty.queue = True

    def take_dirty(self) -> Dirty:
        dirty, self.dirty = self.dirty, Dirty()
        return dirty


def _load_named(
    known: dict[str, dict[str, Any]], items: list[dict[str, Any]], changed: set[str], removed: set[str]
) -> None:
    """A whole list of objects keyed by name: the ones gone are removed, the ones that changed marked."""
    seen = {item["name"] for item in items}
    for gone in set(known) - seen:
        del known[gone]
        removed.add(gone)
    for item in items:
        if known.get(item["name"]) != item:
            known[item["name"]] = item
            changed.add(item["name"])
