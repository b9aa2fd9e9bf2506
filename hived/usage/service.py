"""The usage service: records what handlers report (heartbeat batches, and the batches and `usage`
that come with results), each (lease, seq) once, then has the budgets over it checked
(hived.usage.budgets); and reads the sums that `task show`, `workflow status`, `agent show`,
`hivectl usage` and the budgets show. SQL stays in hived.store.usage."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from hived.clock import SYSTEM_CLOCK, Clock
from hived.errors import Invalid
from hived.model.schemas import AttemptResult
from hived.model.usage import BY, UsageBatch, UsageReport, UsageRow, UsageSums, to_micro, usage_of_result
from hived.store import usage as store
from hived.store.db import Database
from hived.usage.rules import Spent, day_of

log = logging.getLogger("hived.usage")
Counter = Callable[[str, str | None, float, int], None]  # agent name, model, dollars, tokens


def spent_of(sums: store.Sums | None) -> Spent:
    micro, input_tokens, output_tokens, _ = sums or (0, 0, 0, 0)
    return Spent(micro, input_tokens + output_tokens)


def usage_sums(sums: store.Sums | None) -> UsageSums:
    micro, input_tokens, output_tokens, reports = sums or (0, 0, 0, 0)
    return spent_of(sums).sums(input_tokens, output_tokens, reports)


class UsageService:
    def __init__(self, db: Database, clock: Clock = SYSTEM_CLOCK) -> None:
        self.db = db
        self.clock = clock
        # Set by the composition root: agents' names (metrics' labels), and what checks the budgets.
        self.agent_name: Callable[[str], str | None] = lambda agent_id: None
        self.count: Counter | None = None
        self.noted: Callable[[list[dict[str, Any]]], None] | None = None  # the budgets' books, at once
        self.recorded: Callable[[list[dict[str, Any]]], Any] | None = None  # async: the budgets' check

    # --- recording --------------------------------------------------------------------------------

    async def record(self, agent_id: str, batches: Iterable[UsageBatch]) -> int:
        """Increment batches an agent sent (with a heartbeat): recorded once per (lease, seq), only
        for attempts that agent ran. Returns how many were new."""
        now = self.clock.now()
        day = day_of(now)
        reports = [(b.lease, b.seq, b) for b in batches]
        new = await self._record(agent_id, reports, now, day)
        await self.check(new)
        return len(new)

    async def record_results(self, agent_id: str, results: list[AttemptResult]) -> list[dict[str, Any]]:
        """The batches that came with results, and the results' own `usage` (seq 0): recorded even
        when the result itself is refused (stale, cancelled): what was spent was spent. Recorded
        before the results end their attempts (a step that starts next sees the run's spend); the
        caller has the budgets checked (`check`) after that."""
        reports: list[tuple[int, int, Any]] = []
        for res in results:
            reports += [(res.lease, b.seq, b) for b in res.usage or () if b.lease == res.lease]
            if res.result and "usage" in res.result:
                usage, _problem = usage_of_result(res.result)  # a bad one fails the attempt instead
                if usage is not None:
                    reports.append((res.lease, 0, usage))
        if not reports:
            return []
        now = self.clock.now()
        return await self._record(agent_id, reports, now, day_of(now))

    async def _record(
        self, agent_id: str, reports: list[tuple[int, int, Any]], now: datetime, day: str
    ) -> list[dict[str, Any]]:
        if not reports:
            return []

        def write(conn: Any) -> list[dict[str, Any]]:
            owners = store.owners(conn, (lease for lease, _, _ in reports))
            rows = []
            for lease, seq, usage in reports:
                owner = owners.get(lease)
                if owner is None or owner["agent_id"] != agent_id:
                    continue  # not an attempt of this agent: fenced out
                rows.append(
                    {
                        "lease": lease,
                        "seq": seq,
                        "task_id": owner["task_id"],
                        "run_id": owner["run_id"],
                        "agent_id": agent_id,
                        "model": usage.model,
                        "day": day,
                        "input_tokens": usage.input_tokens,
                        "output_tokens": usage.output_tokens,
                        "cost_micro": to_micro(usage.cost_usd),
                        "recorded_at": now,
                    }
                )
            return store.record(conn, rows)

        new = await self.db.write(write)
        if new and self.count is not None:
            name = self.agent_name(agent_id) or agent_id
            for row in new:
                tokens = row["input_tokens"] + row["output_tokens"]
                self.count(name, row["model"], row["cost_micro"] / 1_000_000, tokens)
        if new and self.noted is not None:
            self.noted(new)
        return new

    async def check(self, new: list[dict[str, Any]]) -> None:
        """Have the budgets over these new reports checked."""
        if new and self.recorded is not None:
            try:
                await self.recorded(new)
            except Exception:  # recorded already: the agent must not send them again
                log.exception("checking the budgets over %d new usage reports failed", len(new))

    # --- views ------------------------------------------------------------------------------------

    async def sums(self, column: str, key: str, day: str | None = None) -> UsageSums:
        """The sums of one task, run or agent (on `day`, if given)."""
        found = await self.db.read(lambda c: store.sums_by(c, column, [key], day).get(key))
        return usage_sums(found)

    async def report(self, by: str, since: float | None) -> UsageReport:
        """`hivectl usage --by BY --since S`: sums per agent, workflow, run, model, day or task."""
        if by not in BY:
            raise Invalid(f"by: must be one of {', '.join(BY)}, not {by!r}")
        if since is not None and since <= 0:
            raise Invalid("since: must be a positive duration (e.g. 24h)")
        start = self.clock.now() - timedelta(seconds=since) if since is not None else None
        rows = await self.db.read(lambda c: store.report(c, by, start))
        out = []
        total = [0, 0, 0, 0]
        for row in rows:
            sums = (row["micro"], row["input"], row["output"], row["reports"])
            total = [a + b for a, b in zip(total, sums, strict=True)]
            name = self.agent_name(row["key"]) if by == "agent" and row["key"] else row["name"]
            out.append(UsageRow(key=row["key"], name=name, **usage_sums(sums).model_dump()))
        return UsageReport(
            by=by,
            since=start,
            rows=out,
            total=usage_sums(tuple(total)),  # type: ignore[arg-type]
        )
