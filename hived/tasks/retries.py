"""Tasks waiting out a retry backoff: which are due, and a wait that ends when the next one is due
or a new one arrives. Time comes from the injected clock, so a fake clock drives it. The tasks are
kept packed (hived.tasks.packed: tuples the garbage collector does not track) until they leave."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Iterator
from operator import itemgetter

from hived.clock import Clock
from hived.tasks.attempts import ReadyTask
from hived.tasks.packed import PRIORITY, Packed, pack, unpack


class Retries:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tasks: dict[str, Packed] = {}
        self._due: list[tuple[float, str]] = []  # (monotonic due time, task id), a heap
        self._added = asyncio.Event()

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.tasks

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[ReadyTask]:
        return iter([unpack(packed) for packed in self.tasks.values()])

    def get(self, task_id: str) -> ReadyTask | None:
        packed = self.tasks.get(task_id)
        return unpack(packed) if packed is not None else None

    def priorities(self) -> Iterator[int]:
        """The priority of each task waiting here (without unpacking them)."""
        return map(itemgetter(PRIORITY), self.tasks.values())

    def schedule(self, task: ReadyTask, delay: float) -> None:
        """The task may run again `delay` seconds from now."""
        self.tasks[task.id] = pack(task)
        heapq.heappush(self._due, (self.clock.monotonic() + delay, task.id))
        self._added.set()

    def discard(self, task_id: str) -> None:
        """The task no longer waits (cancelled); its place in the heap is skipped when it comes up."""
        self.tasks.pop(task_id, None)

    def take(self, task_id: str) -> tuple[ReadyTask, float] | None:
        """The task leaves this set; returns it with the seconds its backoff had left."""
        packed = self.tasks.pop(task_id, None)
        if packed is None:
            return None
        due = min((d for d, t in self._due if t == task_id), default=self.clock.monotonic())
        return unpack(packed), max(0.0, due - self.clock.monotonic())

    def has_due(self) -> bool:
        """A backoff is over and its task not yet back in the queue."""
        return bool(self._due) and self._due[0][0] <= self.clock.monotonic()

    def pop_due(self) -> list[ReadyTask]:
        """The tasks whose backoff is over, in due order; they leave this set."""
        now = self.clock.monotonic()
        due = []
        while self._due and self._due[0][0] <= now:
            _, task_id = heapq.heappop(self._due)
            if (packed := self.tasks.pop(task_id, None)) is not None:
                due.append(unpack(packed))
        return due

    async def wait_next(self) -> None:
        """Return when the earliest backoff ends, or when a task is scheduled meanwhile."""
        self._added.clear()
        delay = max(0.0, self._due[0][0] - self.clock.monotonic()) if self._due else None
        await self.clock.wait(self._added, delay)
