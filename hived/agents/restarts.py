"""One agent's restart policy: after an incarnation ends, stop, fail, or restart after a delay that
grows while it keeps failing (from `initial_delay`, x2, capped at `max_delay`, with jitter) and
starts over once an incarnation has run `stable_after`. More than `max_restarts` within `window`
makes the agent `failed`. A recycle (max_tasks, max_memory) is a restart like the others: same
delay, same limit. Pure: the caller gives the clock."""

from __future__ import annotations

import collections
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from hived.model.backoff import backoff_delay
from hived.model.schemas import RestartPolicy

FOOTPRINT_STREAK = 3  # incarnations in a row over max_memory before any task: the spec cannot work


@dataclass(frozen=True)
class Verdict:
    action: Literal["stop", "fail", "restart"]
    delay: float = 0.0
    detail: str | None = None  # why it failed, when the restart limit made it fail


@dataclass
class Restarts:
    times: collections.deque[float] = field(default_factory=collections.deque)  # restarts in the window
    consecutive: int = 0  # failures since the last stable incarnation
    idle_over_memory: int = 0  # incarnations in a row recycled for memory before they ran a task
    rand: Callable[[], float] = random.random

    def after_exit(
        self, policy: RestartPolicy, clean: bool, unhealthy: bool, started: float, now: float
    ) -> Verdict:
        """`clean`: exit code 0; `unhealthy`: hived killed it for missing heartbeats."""
        if policy.policy == "never" or (policy.policy == "on-failure" and clean and not unhealthy):
            return Verdict("stop" if clean else "fail")
        self.idle_over_memory = 0
        return self._again(policy, started, now)

    def after_recycle(
        self, policy: RestartPolicy, started: float, now: float, idle_over_memory: bool = False
    ) -> Verdict:
        """A recycle, whatever `policy.policy` says. `idle_over_memory`: recycled for its memory before
        it ran any task; FOOTPRINT_STREAK of those in a row fail it, since max_memory is then below
        what the agent needs to merely run."""
        self.idle_over_memory = self.idle_over_memory + 1 if idle_over_memory else 0
        if self.idle_over_memory >= FOOTPRINT_STREAK:
            detail = (
                f"max_memory is below the agent's own footprint: over it before running any task, "
                f"{self.idle_over_memory} incarnations in a row"
            )
            return Verdict("fail", detail=detail)
        return self._again(policy, started, now)

    def _again(self, policy: RestartPolicy, started: float, now: float) -> Verdict:
        if now - started >= policy.stable_after:
            self.consecutive = 0
        self.consecutive += 1
        while self.times and now - self.times[0] > policy.window:
            self.times.popleft()
        if len(self.times) >= policy.max_restarts:
            detail = f"restart limit reached: {len(self.times)} restarts within {policy.window:g}s"
            return Verdict("fail", detail=detail)
        delay = backoff_delay(self.consecutive, policy.initial_delay, 2.0, policy.max_delay, 0.1, self.rand)
        self.times.append(now)
        return Verdict("restart", delay)

    def reset(self) -> None:
        """An operator's restart starts the count over."""
        self.times.clear()
        self.consecutive = 0
        self.idle_over_memory = 0
