"""Budgets in force: after every recorded report, the budgets over it (its task's or step's, its run's,
its agent's for the day, the daemon's for the day) are compared with the sums in the database; a
budget exceeded stops the attempts running under it with reason `budget_exceeded`, and then:

- `fail`: their tasks fail (a run whose budget it was fails);
- `pause`: their tasks go back to the queue, held: a run's budget (or a step's) puts the run in status
  `paused` until `hivectl workflow resume RUN [--add-budget COST]` or a cancel; an agent's or the
  daemon's daily budget holds the work back until the next UTC day.

An agent or the daemon over its daily budget takes no new work that day, whichever `on_exceed`.
A workflow step with an `estimate` that does not fit in what is left of its run's budget does not
start (`fail`: the step fails; `pause`: the run pauses before it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hived.clock import SYSTEM_CLOCK, Clock
from hived.errors import Conflict, Invalid
from hived.events import RunChanged
from hived.model.schemas import TaskSubmit
from hived.model.states import RunStatus, StepStatus
from hived.model.usage import Budget, BudgetState, ResumeRequest, to_micro
from hived.model.workflow import StepSpec
from hived.store import usage as store
from hived.store.db import Database
from hived.tasks.dispatcher import Dispatcher
from hived.usage.rules import Limit, Spent, day_of, misfit, money, next_day, over, state
from hived.usage.service import spent_of, usage_sums
from hived.workflows.engine import WorkflowEngine
from hived.workflows.live import Change, LiveRun, StepState

log = logging.getLogger("hived.usage")
EVERYONE = "*"  # in `holding.spent`: the daemon's budget for the day is spent


class Budgets:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        engine: WorkflowEngine,
        daemon_budget: Budget | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.engine = engine
        self.daemon_budget = daemon_budget
        self.clock = clock
        self.paused_runs: set[str] = set()
        self.run_spent: dict[str, Spent] = {}  # runs with a budget, as last read
        self.run_added: dict[str, tuple[int, int]] = {}  # what resumes added (micro-USD, tokens)
        self.agent_budget: Callable[[str], Budget | None] = lambda agent_id: None  # set by the root
        self.day_spent: tuple[str, Spent] = ("", Spent())  # the daemon's, as last read (with a budget)
        self._day_loop: asyncio.Task[None] | None = None
        dispatcher.holding.run_paused = self.paused_runs.__contains__
        engine.budget_gate = self.step_gate

    # --- life -------------------------------------------------------------------------------------

    async def load(self, agent_ids: list[str]) -> None:
        """After the runs are loaded: which are paused, what runs with budgets spent, and which
        daily budgets are spent today."""
        self.paused_runs.update(r.id for r in self.engine.runs.values() if r.status == RunStatus.PAUSED)
        budgeted = [r.id for r in self.engine.runs.values() if r.spec.budget is not None]
        self.run_spent.update((run_id, Spent()) for run_id in budgeted)
        day = day_of(self.clock.now())
        with_budget = [a for a in agent_ids if self.agent_budget(a) is not None]

        def read(conn: Any) -> tuple[Any, ...]:
            return (
                store.sums_by(conn, "run_id", budgeted),
                store.run_added(conn, budgeted),
                store.sums_by(conn, "agent_id", with_budget, day),
                store.day_total(conn, day),
            )

        runs, added, agents, total = await self.db.read(read)
        self.run_added.update(added)
        for run_id in budgeted:
            self.run_spent[run_id] = spent_of(runs.get(run_id))
        for agent_id in with_budget:
            budget = self.agent_budget(agent_id)
            if budget is not None and over(Limit.of(budget), spent_of(agents.get(agent_id))):
                self.dispatcher.holding.spent.add(agent_id)
        self.day_spent = (day, spent_of(total))
        if self.daemon_budget is not None and over(Limit.of(self.daemon_budget), spent_of(total)):
            self.dispatcher.holding.spent.add(EVERYONE)
        self.dispatcher.rehold()

    def start(self) -> None:
        self._day_loop = asyncio.create_task(self._new_days(), name="budget-days")

    async def stop(self) -> None:
        if self._day_loop is not None:
            self._day_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._day_loop

    async def _new_days(self) -> None:
        """At each UTC midnight the daily budgets start again: held agents take work again."""
        while True:
            await self.clock.sleep(next_day(self.clock.now()) + 0.5)
            if self.dispatcher.holding.spent:
                log.info("a new UTC day: the agents' and the daemon's daily budgets start again")
                self.dispatcher.holding.spent.clear()
                self.dispatcher.rehold()

    def run_changed(self, event: RunChanged) -> None:
        if RunStatus(event.status).final:
            self.paused_runs.discard(event.run_id)
            self.run_spent.pop(event.run_id, None)
            self.run_added.pop(event.run_id, None)

    # --- after each report ------------------------------------------------------------------------

    def noted(self, rows: list[dict[str, Any]]) -> None:
        """New reports, at once (before `recorded` reads the sums): the runs' spend step gates see."""
        for row in rows:
            if self.run_limit(row["run_id"] or "") is not None:  # a run started since: from nothing
                spent = self.run_spent.get(row["run_id"], Spent())
                tokens = row["input_tokens"] + row["output_tokens"]
                self.run_spent[row["run_id"]] = Spent(spent.micro + row["cost_micro"], spent.tokens + tokens)

    async def recorded(self, rows: list[dict[str, Any]]) -> None:
        """New reports are recorded: check every budget over them."""
        day = rows[0]["day"]
        tasks = {r["task_id"]: b for r in rows if (b := self._task_budget(r["task_id"])) is not None}
        runs = {r["run_id"] for r in rows if r["run_id"] in self.engine.runs}
        runs = {run_id for run_id in runs if self.engine.runs[run_id].spec.budget is not None}
        agents = {r["agent_id"]: b for r in rows if (b := self.agent_budget(r["agent_id"])) is not None}
        daemon = self.daemon_budget
        if not (tasks or runs or agents or daemon):
            return

        def read(conn: Any) -> tuple[Any, ...]:
            return (
                store.sums_by(conn, "task_id", tasks),
                store.sums_by(conn, "run_id", runs),
                store.sums_by(conn, "agent_id", agents, day),
                store.day_total(conn, day) if daemon is not None else None,
            )

        task_sums, run_sums, agent_sums, total = await self.db.read(read)
        if total is not None:
            self.day_spent = (day, spent_of(total))
        for run_id in runs:
            self.run_spent[run_id] = spent_of(run_sums.get(run_id))
        for task_id, budget in tasks.items():
            run_id = self._run_of(task_id)
            limit = Limit.of(budget, *self.run_added.get(run_id or "", (0, 0)))
            if why := over(limit, spent_of(task_sums.get(task_id))):
                await self._task_over(task_id, run_id, f"budget exceeded: task {task_id[:8]} {why}", limit)
        for run_id in runs:
            run_limit = self.run_limit(run_id)
            if run_limit is not None and (why := over(run_limit, self.run_spent[run_id])):
                await self._run_over(run_id, f"budget exceeded: run {run_id[:8]} {why}", run_limit.on_exceed)
        for agent_id, budget in agents.items():
            if why := over(Limit.of(budget), spent_of(agent_sums.get(agent_id))):
                await self._day_over(agent_id, f"budget exceeded: agent's budget for {day}: {why}", budget)
        if daemon is not None and (why := over(Limit.of(daemon), spent_of(total))):
            await self._day_over(EVERYONE, f"budget exceeded: the daemon's budget for {day}: {why}", daemon)

    def _task_budget(self, task_id: str) -> dict[str, Any] | None:
        entry = self.dispatcher.in_flight.get(task_id)  # an ended task has nothing left to stop
        return entry.task.options.get("budget") if entry is not None else None

    def _run_of(self, task_id: str) -> str | None:
        entry = self.dispatcher.in_flight.get(task_id)
        return entry.task.run_id if entry is not None else None

    def run_limit(self, run_id: str) -> Limit | None:
        run = self.engine.runs.get(run_id)
        if run is None or run.spec.budget is None:
            return None
        return Limit.of(run.spec.budget, *self.run_added.get(run_id, (0, 0)))

    async def _task_over(self, task_id: str, run_id: str | None, why: str, limit: Limit) -> None:
        if limit.on_exceed == "pause" and run_id is not None:
            await self._run_over(run_id, why, "pause", only=[task_id])
            return
        log.warning("task %s: %s: stopped", task_id, why)
        await self.dispatcher.stop_attempts([task_id], why)

    async def _run_over(self, run_id: str, why: str, on_exceed: str, only: list[str] | None = None) -> None:
        """Stop the run's attempts in flight (or `only` these); then the run fails, or pauses."""
        running = only or [t for t, e in self.dispatcher.in_flight.items() if e.task.run_id == run_id]
        if on_exceed == "pause":
            first = run_id not in self.paused_runs
            self.paused_runs.add(run_id)  # first: the tasks stopped now are held, not queued
            await self.dispatcher.stop_attempts(running, why, requeue=True)
            if first:
                log.warning("workflow run %s: %s: paused", run_id, why)
                interrupt(self.engine, run_id, paused(why))
            return
        log.warning("workflow run %s: %s: failed", run_id, why)
        await self.dispatcher.stop_attempts(running, why)
        interrupt(self.engine, run_id, lambda run, now: run.end(RunStatus.FAILED, why, now))

    async def _day_over(self, agent_id: str, why: str, budget: Budget) -> None:
        holding = self.dispatcher.holding
        if agent_id not in holding.spent:
            log.warning("%s: no new work until the next UTC day", why)
            holding.spent.add(agent_id)
        running = [t for t, e in self.dispatcher.in_flight.items() if agent_id in (EVERYONE, e.agent_id)]
        await self.dispatcher.stop_attempts(running, why, requeue=budget.on_exceed == "pause")

    # --- tasks and steps about to start, resumes ---------------------------------------------------

    def check_submit(self, sub: TaskSubmit, run_id: str | None) -> None:
        """A task's budget and estimate at submit: `pause` only for a workflow's step (it pauses the
        run); an estimate over what is left of the daemon's budget for today is refused."""
        if run_id is None and sub.budget is not None and sub.budget.on_exceed == "pause":
            raise Invalid(
                "budget.on_exceed: pause holds a workflow run until it is resumed; "
                "a task outside a workflow can only fail"
            )
        daemon = self.daemon_budget
        day, spent = self.day_spent
        if daemon is None or sub.estimate is None:
            return
        if day != day_of(self.clock.now()):
            spent = Spent()
        if why := misfit(Limit.of(daemon), spent, sub.estimate):
            raise Conflict(
                f"estimate: the task does not fit in what is left of the daemon's budget today ({why})"
            )

    def step_gate(self, run: LiveRun, spec: StepSpec, step: StepState, now: datetime) -> bool:
        """Whether a step must not start now (the engine asks before it makes the step's task): its
        run is paused (it starts after the resume), or its estimate does not fit in what is left of
        the run's budget (then the step fails, or the run pauses, per the budget's on_exceed)."""
        if run.id in self.paused_runs:
            return True
        limit = self.run_limit(run.id)
        if spec.estimate is None or limit is None:
            return False
        why = misfit(limit, self.run_spent.get(run.id, Spent()), spec.estimate)
        if why is None:
            return False
        message = f"budget: step {spec.id!r} does not fit in what is left of the run's budget ({why})"
        if limit.on_exceed == "pause":
            self.paused_runs.add(run.id)
            paused(message)(run, now)
        else:
            step.finish(StepStatus.FAILED, now, message)
        return True

    async def resume(self, run_id: str, request: ResumeRequest) -> None:
        """Resume a paused run, its budget raised first by what is given (its steps' budgets too);
        refused while it would still be over."""
        run = self.engine.runs.get(run_id)
        if run is None or run.status != RunStatus.PAUSED:
            status = run.status if run is not None else "not active"
            raise Conflict(f"run {run_id} is {status}, not paused: nothing to resume")
        micro, tokens = to_micro(request.add_budget), request.add_tokens or 0
        had = self.run_added.get(run_id, (0, 0))
        added = (had[0] + micro, had[1] + tokens)
        if run.spec.budget is not None:
            spent = await self.db.read(lambda c: store.sums_by(c, "run_id", [run_id]).get(run_id))
            self.run_spent[run_id] = spent_of(spent)
            if why := over(Limit.of(run.spec.budget, *added), self.run_spent[run_id]):
                raise Conflict(
                    f"run {run_id} would still be over its budget ({why}): add more with --add-budget"
                    " (dollars) or --add-tokens"
                )
        if micro or tokens:
            await self.db.write(lambda c: store.add_to_run(c, run_id, micro, tokens, self.clock.now()))
        self.run_added[run_id] = added
        self.paused_runs.discard(run_id)
        interrupt(self.engine, run_id, resumed)
        self.dispatcher.rehold()
        while (draining := run.draining) is not None:  # answered once the run shows it
            await asyncio.shield(draining)
        log.info("workflow run %s: resumed (budget raised by %s, %d tokens)", run_id, money(micro), tokens)

    async def run_state(self, run_id: str) -> BudgetState | None:
        limit = self.run_limit(run_id)
        if limit is None:
            return None
        sums = await self.db.read(lambda c: store.sums_by(c, "run_id", [run_id]).get(run_id))
        return state(limit, spent_of(sums), usage_sums(sums))


def interrupt(engine: WorkflowEngine, run_id: str, change: Change) -> None:
    """Apply `change` to an active run at its next drain, as the engine's own cancel does."""
    if (run := engine.runs.get(run_id)) is not None and not run.done:
        engine.deliver(run, change)


def paused(why: str) -> Change:
    def apply(run: LiveRun, now: datetime) -> None:
        if run.status in (RunStatus.RUNNING, RunStatus.PENDING):
            run.move(RunStatus.PAUSED)
            run.run_values.update(status=RunStatus.PAUSED, error=why)

    return apply


def resumed(run: LiveRun, now: datetime) -> None:
    if run.status == RunStatus.PAUSED:
        run.move(RunStatus.RUNNING)
        run.run_values.update(status=RunStatus.RUNNING, error=None)
        run.candidates.update(sid for sid, s in run.steps.items() if s.status == StepStatus.PENDING)
        run.checked = False  # look at the whole run again: steps may have ended while it was paused
