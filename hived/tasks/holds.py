"""What holds queued tasks back besides a lack of agents: pauses of the queue (`hivectl queue pause
--type T --requires C --workflow W`) and cordoned agents (`hivectl agent cordon`). The rules are pure
(which pause holds a task, and how that reads); `Holds` keeps them in memory for the dispatcher.

A held task stays `pending` and in the dispatcher's book (`ready`) but out of its ReadyQueue, so the
assignment rules never see it; a resume puts it back in its place (by priority and submission order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hived.tasks.attempts import ReadyTask
from hived.tasks.packed import ID, REQUIRES, RUN_ID, SEQ, TYPE, Packed, requires_of
from hived.tasks.routing import ReadyQueue


@dataclass(frozen=True)
class Pause:
    """Which tasks a pause holds: all of those given must hold (none given: every task)."""

    type: str | None = None
    requires: frozenset[str] = frozenset()
    workflow: str | None = None

    @property
    def key(self) -> str:
        """The selector written out: one stored pause per selector."""
        requires = ",".join(sorted(self.requires))
        return f"type={self.type or ''};requires={requires};workflow={self.workflow or ''}"

    def matches(self, type: str, requires: frozenset[str], workflow: str | None) -> bool:
        return (
            (self.type is None or self.type == type)
            and self.requires <= requires
            and (self.workflow is None or self.workflow == workflow)
        )

    def describe(self) -> str:
        parts = [f"type {self.type}"] if self.type else []
        parts += [f"requires {cap}" for cap in sorted(self.requires)]
        parts += [f"workflow {self.workflow}"] if self.workflow else []
        return ", ".join(parts) or "all tasks"


def waiting_reason(
    pauses: Iterable[Pause], type: str, requires: frozenset[str], workflow: str | None
) -> str | None:
    """`paused (type T)` for a task one or more pauses hold (each named), else None."""
    holding = [p.describe() for p in pauses if p.matches(type, requires, workflow)]
    return f"paused ({'; '.join(holding)})" if holding else None


@dataclass
class Holds:
    """The pauses and cordons in force, and which ready tasks they hold out of the queue."""

    pauses: dict[str, Pause] = field(default_factory=dict)
    cordoned: set[str] = field(default_factory=set)  # agent ids
    parked: set[str] = field(default_factory=set)  # ready tasks held out of the queue
    # The workflow a run belongs to (set by the composition root; None: not a run's task).
    workflow_of: Callable[[str], str | None] = lambda _run_id: None
    # Budgets (hived.usage.budgets): runs paused, agents (or "*": all) over their budget for the day.
    run_paused: Callable[[str], bool] = lambda _run_id: False
    spent: set[str] = field(default_factory=set)

    def holds(self, task: ReadyTask) -> bool:
        return self._holds(task.type, task.requires, task.run_id)

    def _holds(self, type: str, requires: frozenset[str], run_id: str | None) -> bool:
        if run_id is not None and self.run_paused(run_id):
            return True
        if not self.pauses:
            return False
        workflow = self.workflow_of(run_id) if run_id else None
        return any(p.matches(type, requires, workflow) for p in self.pauses.values())

    def _holds_packed(self, packed: Packed) -> bool:
        return self._holds(packed[TYPE], requires_of(packed[REQUIRES]), packed[RUN_ID])

    def reason(self, type: str, requires: frozenset[str], run_id: str | None) -> str | None:
        if run_id is not None and self.run_paused(run_id):
            return "run paused: a budget was exceeded (hivectl workflow resume RUN --add-budget COST)"
        if "*" in self.spent:
            return "budget: the daemon's budget for today is spent"
        if not self.pauses:
            return None
        workflow = self.workflow_of(run_id) if run_id else None
        return waiting_reason(self.pauses.values(), type, requires, workflow)

    def park(self, task: ReadyTask) -> bool:
        """Whether a task entering the queue is held instead (then it is remembered as parked)."""
        if self.holds(task):
            self.parked.add(task.id)
            return True
        return False

    def refresh(self, ready: dict[str, Packed], queue: ReadyQueue) -> list[Packed]:
        """After a change of pauses: queued tasks now held leave `queue` (parked); returns the parked
        tasks no longer held (packed: hived.tasks.packed), which the caller puts back in the queue."""
        for task_id, packed in ready.items():
            if task_id in queue and self._holds_packed(packed):
                queue.discard(task_id)
                self.parked.add(task_id)
        released = []
        for task_id in list(self.parked):
            packed = ready.get(task_id)
            if packed is None or not self._holds_packed(packed):  # gone (assigned, cancelled) or free
                self.parked.discard(task_id)
                if packed is not None:
                    released.append(packed)
        return sorted(released, key=lambda p: (p[SEQ], p[ID]))
