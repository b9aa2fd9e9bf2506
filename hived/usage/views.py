"""Usage in the views of a task (`task show`), a run (`workflow status`) and an agent (`agent show`):
what was spent, and the budget over it with what is left. Read from the sums in the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hived.model.runs import Run
from hived.model.schemas import AgentDetail, TaskDetail
from hived.model.usage import Budget
from hived.store import usage as store
from hived.store import workflows as workflow_store
from hived.usage.rules import Limit, day_of, state
from hived.usage.service import UsageService, spent_of, usage_sums


class UsageViews:
    def __init__(self, usage: UsageService) -> None:
        self.usage = usage
        self.db = usage.db
        self.agent_budget: Callable[[str], Budget | None] = lambda agent_id: None  # set by the root

    @staticmethod
    def task_read(conn: Any, task_id: str, run_id: str | None) -> tuple[Any, ...]:
        """What `task` shows, read in the task view's own read (one read, not two)."""
        sums, per_attempt = store.task_sums(conn, task_id)
        added = store.run_added(conn, [run_id]).get(run_id) if run_id else None
        return sums, per_attempt, added

    def task(self, detail: TaskDetail, read: tuple[Any, ...]) -> TaskDetail:
        sums, per_attempt, added = read
        detail.usage = usage_sums(sums)
        for attempt in detail.attempt_history:
            attempt.usage = usage_sums(per_attempt[attempt.number]) if attempt.number in per_attempt else None
        if detail.budget is not None:
            budget = Budget.model_validate(
                detail.budget.model_dump(include={"cost_usd", "tokens", "on_exceed"})
            )
            detail.budget = state(Limit.of(budget, *(added or (0, 0))), spent_of(sums), detail.usage)
        return detail

    async def run(self, run: Run) -> Run:
        def read(conn: Any) -> tuple[Any, ...]:
            sums = store.sums_by(conn, "run_id", [run.id]).get(run.id)
            definition = workflow_store.workflow_definitions(conn, [run.workflow_id]).get(run.workflow_id)
            return sums, (definition or {}).get("budget"), store.run_added(conn, [run.id]).get(run.id)

        sums, budget, added = await self.db.read(read)
        run.usage = usage_sums(sums)
        if budget is not None:
            run.budget = state(Limit.of(budget, *(added or (0, 0))), spent_of(sums), run.usage)
        return run

    async def agent(self, detail: AgentDetail) -> AgentDetail:
        day = day_of(self.usage.clock.now())
        sums = await self.db.read(lambda c: store.sums_by(c, "agent_id", [detail.id], day).get(detail.id))
        detail.usage_today = usage_sums(sums)
        if (budget := self.agent_budget(detail.id)) is not None:
            detail.budget = state(Limit.of(budget), spent_of(sums), detail.usage_today)
        return detail
