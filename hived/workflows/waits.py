"""Steps that wait without a task (hived.model.waits): `sleep`, `wait_for: {signal}` and approval
gates. A waiting step holds no agent; the engine only remembers when it wakes. That time is the
step's stored `started_at` plus its duration, so the timers are rebuilt from the database when hived
starts (`rearm`), and a wake-up that fell while hived was down happens at once.

One loop sleeps on the daemon's clock until the earliest wake-up (or until a new one is armed) and
hands each step whose time is up to its run's inbox, like the run deadlines (hived.workflows.deadlines).
Signals arrive through the engine (`hivectl workflow signal`) as changes built here."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hived.clock import Clock
from hived.errors import Conflict
from hived.model.waits import APPROVAL, SIGNAL, time_up, wait_kind, wakes_at
from hived.model.workflow import StepSpec
from hived.workflows.live import Change, LiveRun, S, StepState

REMEMBERED = ("comment", "rework")  # what an approval keeps across rework rounds
SIGNALLED = "signal"  # decided_by of a wait_for step whose signal came


class Waits:
    def __init__(
        self, runs: dict[str, LiveRun], clock: Clock, deliver: Callable[[LiveRun, Change], None]
    ) -> None:
        self.runs = runs
        self.clock = clock
        self._deliver = deliver
        self._due: list[tuple[datetime, int, str, str, datetime]] = []  # (when, n, run, step, started)
        self._order = itertools.count()
        self.changed = asyncio.Event()  # a wake-up was armed

    def begin(self, run: LiveRun, spec: StepSpec, payload: Any) -> bool:
        """Start `spec` as a waiting step if it is one (True); False for a step that runs a task."""
        kind = wait_kind(spec)
        if kind is None:
            return False
        step = run.steps[spec.id]
        step.move(S.WAITING)
        if kind == SIGNAL and step.decided_by == SIGNALLED:  # its signal came before it started
            step.finish(S.SUCCEEDED, step.started_at or self.clock.now())
            return True
        if kind == APPROVAL:
            kept = {k: v for k, v in (step.result or {}).items() if k in REMEMBERED and v is not None}
            step.result = {**kept, **({"message": payload} if payload else {})} or None
        self.arm(run.id, spec, step)
        return True

    def arm(self, run_id: str, spec: StepSpec, step: StepState) -> None:
        when = wakes_at(spec, step.started_at)
        if when is not None and step.started_at is not None:
            heapq.heappush(self._due, (when, next(self._order), run_id, step.id, step.started_at))
            self.changed.set()

    def rearm(self, run: LiveRun) -> None:
        """The timers of a run read from the database (hived started, or the run was read again)."""
        for step in run.steps.values():
            if step.status == S.WAITING:
                self.arm(run.id, run.graph.specs[step.id], step)

    def next_wake(self) -> datetime | None:
        return self._due[0][0] if self._due else None

    async def follow(self) -> None:
        while True:
            self.changed.clear()
            self.check()
            when = self.next_wake()
            wait = None if when is None else max((when - self.clock.now()).total_seconds(), 0.001)
            await self.clock.wait(self.changed, wait)

    def check(self) -> int:
        """Hand every step whose time is up to its run; returns how many."""
        now, woken = self.clock.now(), 0
        while self._due and self._due[0][0] <= now:
            _, _, run_id, step_id, started = heapq.heappop(self._due)
            run = self.runs.get(run_id)
            if run is not None and not run.done:
                self._deliver(run, time_is_up(step_id, started))
                woken += 1
        return woken


def time_is_up(step_id: str, started: datetime) -> Change:
    """The change of a run when a waiting step's time is up (nothing if it moved on meanwhile: it was
    signalled, decided, or sent back by a rework and started again)."""

    def apply(run: LiveRun, now: datetime) -> None:
        step = run.steps.get(step_id)
        if step is None or step.status != S.WAITING or step.started_at != started or step.decided_by:
            return
        spec = run.graph.specs[step_id]
        outcome = time_up(spec)
        if wait_kind(spec) == APPROVAL:
            step.decided_by = "timeout"
            outcome.result = {**remembered(step), **outcome.result}
        step.result = outcome.result
        step.finish(S.SUCCEEDED if outcome.ok else S.FAILED, now, outcome.error)

    return apply


def remembered(step: StepState) -> dict[str, Any]:
    """What an approval keeps from earlier rounds (its rework count)."""
    result = step.result if isinstance(step.result, dict) else {}
    return {"rework": result["rework"]} if result.get("rework") else {}


def waiting_for(run: LiveRun, name: str) -> list[str]:
    """The steps of `run` a signal `name` goes to: those waiting for it now; else those that will
    wait for it once they start (it is kept for them); Conflict naming what does wait if none."""
    waits = {
        step.id: (step, spec.wait_for.signal)
        for step in run.steps.values()
        if (spec := run.graph.specs[step.id]).wait_for is not None
    }
    now = [sid for sid, (step, signal) in waits.items() if step.status == S.WAITING and signal == name]
    later = [
        sid
        for sid, (step, signal) in waits.items()
        if step.status == S.PENDING and signal == name and step.decided_by is None
    ]
    kept = [sid for sid, (step, signal) in waits.items() if step.status == S.PENDING and signal == name]
    if not now and not later and kept:
        steps = ", ".join(kept)
        raise Conflict(f"run {run.id}: signal {name!r} was sent already: {steps} will start with it")
    if not now and not later:
        names = sorted({signal for step, signal in waits.values() if step.status in (S.WAITING, S.PENDING)})
        what = f"it waits for {', '.join(map(repr, names))}" if names else "no step waits for a signal"
        raise Conflict(f"run {run.id}: no step waits for signal {name!r} ({what})")
    return now or later


def signalled(step_ids: list[str], data: Any) -> Change:
    """The change of a run when a signal arrives: the steps waiting for it succeed with its data; a
    step that has not started yet keeps it (`decided_by: signal`) and succeeds as soon as it starts."""

    def apply(run: LiveRun, now: datetime) -> None:
        for step_id in step_ids:
            step = run.steps[step_id]
            if step.status not in (S.WAITING, S.PENDING) or step.decided_by is not None:
                continue
            step.result, step.decided_by = data, SIGNALLED
            if step.status == S.WAITING:
                step.finish(S.SUCCEEDED, now)
            else:
                run.changed[step_id] = step  # written with this change: kept across a restart

    return apply
