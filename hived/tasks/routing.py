"""Which task runs next and on which agent: pure rules, no I/O.

Order: higher priority first, FIFO within a priority. Fairness: every `fifo_share`-th assignment
takes the oldest ready task whatever its priority, so a constant stream of high-priority work
cannot starve low-priority tasks (each waits at most about `fifo_share` assignments per task
queued before it). Routing: a task goes only to agents having every capability it requires;
among those, the least loaded (in flight / max_concurrency), ties to the one assigned longest ago.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class AgentSlot:
    """What routing needs to know of one agent."""

    agent_id: str
    capabilities: frozenset[str]
    max_concurrency: int
    in_flight: int = 0
    last_assigned: int = 0
    limit: int | None = None  # a lower ceiling than max_concurrency (circuit breaker)

    @property
    def free(self) -> int:
        ceiling = self.max_concurrency if self.limit is None else min(self.limit, self.max_concurrency)
        return ceiling - self.in_flight


def pick_agent(requires: frozenset[str], agents: Iterable[AgentSlot]) -> AgentSlot | None:
    """The least-loaded agent able to take a task needing `requires`, or None."""
    best: AgentSlot | None = None
    best_key: tuple[float, int] = (2.0, 0)
    for agent in agents:
        if agent.free <= 0 or not requires <= agent.capabilities:
            continue
        key = (agent.in_flight / agent.max_concurrency, agent.last_assigned)
        if best is None or key < best_key:
            best, best_key = agent, key
    return best


SEQ_BITS = 63  # a task's seq is below 2**63 (a BIGINT; on a node of a cluster, milliseconds x slots)


def order(priority: int, seq: int) -> int:
    """One int that sorts as (-priority, seq) does: higher priority first, then submission order
    (a heap of (int, id) compares one int where (-priority, seq, id) compared a tuple)."""
    return (-priority << SEQ_BITS) + seq


class ReadyQueue:
    """Ready tasks grouped by the capability set they require (a handful of groups in practice)."""

    def __init__(self) -> None:
        # Heap entries are plain tuples of (order(priority, seq), id) and (seq, id): tuples of atoms,
        # which the garbage collector stops tracking, so a queue of 100,000 tasks costs its full
        # collections nothing (seq is unique: the id is never compared).
        self._by_priority: dict[frozenset[str], list[tuple[int, str]]] = {}
        self._by_age: dict[frozenset[str], list[tuple[int, str]]] = {}
        self._live: dict[str, frozenset[str]] = {}

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._live

    def push(self, task_id: str, priority: int, seq: int, requires: frozenset[str]) -> None:
        if task_id in self._live:
            return
        self._live[task_id] = requires
        heapq.heappush(self._by_priority.setdefault(requires, []), (order(priority, seq), task_id))
        heapq.heappush(self._by_age.setdefault(requires, []), (seq, task_id))

    def discard(self, task_id: str) -> bool:
        """Forget a task (cancelled); its heap entries are dropped lazily."""
        return self._live.pop(task_id, None) is not None

    def _head(self, requires: frozenset[str], oldest: bool) -> tuple[int, str] | None:
        heap = self._by_age[requires] if oldest else self._by_priority[requires]
        live = self._live
        while heap and heap[0][1] not in live:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def heads(self, oldest: bool = False) -> list[tuple[int, frozenset[str], str]]:
        """The best task of each group, best first: (order(priority, seq), or seq when `oldest`,
        requires, id)."""
        out = []
        for requires in list(self._by_priority):
            head = self._head(requires, oldest)
            if head is None:
                if not self._by_priority[requires] and not self._by_age[requires]:
                    del self._by_priority[requires], self._by_age[requires]
                continue
            out.append((head[0], requires, head[1]))
        out.sort(key=lambda item: item[0])
        return out

    def take(self, task_id: str) -> None:
        self._live.pop(task_id, None)


class MergedQueue:
    """Ready queues seen as one by the Assigner: the dispatcher's, and a round's tasks that the
    limits gate let through (built for that round only)."""

    def __init__(self, *queues: ReadyQueue) -> None:
        self.queues = queues

    def __len__(self) -> int:
        return sum(len(queue) for queue in self.queues)

    def heads(self, oldest: bool = False) -> list[tuple[int, frozenset[str], str]]:
        out = [head for queue in self.queues for head in queue.heads(oldest)]
        out.sort(key=lambda item: item[0])
        return out

    def take(self, task_id: str) -> None:
        for queue in self.queues:
            queue.take(task_id)


@dataclass
class Assigner:
    """Matches ready tasks to free agents, one assignment at a time, with the fairness share."""

    fifo_share: int = 10
    _counter: int = 0

    def assign(
        self, queue: ReadyQueue | MergedQueue, agents: list[AgentSlot]
    ) -> list[tuple[str, AgentSlot]]:
        """Every assignment possible now; updates the agents' load and takes tasks off the queue."""
        assignments: list[tuple[str, AgentSlot]] = []
        free = [a for a in agents if a.free > 0]
        while free and len(queue):
            self._counter += 1
            oldest = self.fifo_share > 0 and self._counter % self.fifo_share == 0
            made = False
            for _key, requires, task_id in queue.heads(oldest=oldest):
                agent = pick_agent(requires, free)
                if agent is None:
                    continue
                queue.take(task_id)
                agent.in_flight += 1
                agent.last_assigned = self._counter
                assignments.append((task_id, agent))
                if agent.free <= 0:
                    free.remove(agent)
                made = True
                break
            if not made:
                self._counter -= 1
                break
        return assignments
