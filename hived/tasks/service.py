"""The task service: what the task routes (and the PRD's facade) call. It accepts submissions
(idempotency keys, batches in one transaction), reads tasks and their attempts, and cancels and
retries them through the dispatcher. SQL stays in hived.store.tasks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from hived.bounds import Limits
from hived.errors import Conflict, Invalid, NotFound
from hived.events import EventBus, TaskEnded, TaskSubmitted
from hived.limits.service import LimitsService
from hived.model.limits import taken
from hived.model.queue import BulkRequest, BulkResult
from hived.model.schemas import Attempt, Task, TaskDetail, TaskSubmit
from hived.model.states import TaskStatus
from hived.model.workspaces import AFFINITY_OPTION, WORKSPACE_LABEL
from hived.store import tasks as task_store
from hived.store.db import Database, DuplicateKey
from hived.tasks.bulk import bulk
from hived.tasks.controls import QueueControls
from hived.tasks.dispatcher import Dispatcher, ReadyTask
from hived.tasks.holds import Holds
from hived.tasks.timers import Timers

HEAVY_ROWS = 20  # a batch submit of more tasks is written off the event loop (SQLite)


def task_view(row: dict[str, Any], holding: Holds | None = None) -> Task:
    """A row of the tasks table as the API shows it (with the holds: why a pending task waits)."""
    return Task(**_fields(row, holding))


def _fields(row: dict[str, Any], holding: Holds | None = None) -> dict[str, Any]:
    reason = None
    if holding is not None and row["status"] == TaskStatus.PENDING:
        reason = holding.reason(row["type"], frozenset(row["requires"] or ()), row["run_id"])
    return dict(
        id=row["id"],
        type=row["type"],
        status=row["status"],
        priority=row["priority"],
        requires=row["requires"] or [],
        payload=row["payload"] or {},
        agent_id=row["agent_id"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        result=row["result"],
        error=row["error"],
        idempotency_key=row["idempotency_key"],
        run_id=row["run_id"],
        timeout=(row["options"] or {}).get("timeout"),
        limits=taken((row["options"] or {}).get("limits") or []),
        next_attempt_at=row["next_attempt_at"],
        labels=row.get("labels") or {},
        not_before=row.get("not_before"),
        expires_at=row.get("expires_at"),
        waiting_reason=reason,
        budget=(row["options"] or {}).get("budget"),
        estimate=(row["options"] or {}).get("estimate"),
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
    )


class TaskService:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        limits: Limits,
        events: EventBus,
        limit_service: LimitsService | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.limit_service = limit_service
        self.limits = limits
        self.events = events
        self.clock = clock
        self.timers = Timers(dispatcher)  # scheduled starts and expiries
        self.controls = QueueControls(dispatcher)  # pauses and cordons
        # Set by the composition root: agent and run references to ids, for list filters.
        self.agent_id_of: Callable[[str], str] = lambda ref: ref
        self.run_id_of: Callable[[str], Awaitable[str]] | None = None
        # Set by the composition root (hived.usage): a budget or estimate refused at submit, and the
        # usage and budget shown with a task.
        self.budget_check: Callable[[TaskSubmit, str | None], None] | None = None
        self.usage_view: Callable[[TaskDetail, Any], TaskDetail] | None = None
        self.usage_read: Callable[[Any, str, str | None], Any] | None = None  # in the task's read

    # --- submissions ------------------------------------------------------------------------------

    async def submit(self, task: TaskSubmit | dict[str, Any]) -> Task:
        sub = task if isinstance(task, TaskSubmit) else TaskSubmit.model_validate(task)
        if sub.idempotency_key and (existing := await self._keyed(sub.idempotency_key)):
            return self._same_submission(existing, sub)
        row = self.new_row(sub)
        claimed = None
        if row["status"] == TaskStatus.PENDING:  # an agent is free: one commit
            claimed = self.dispatcher.claim(ReadyTask.from_row(row))
        now = self.clock()
        if claimed is not None:  # inserted as assigned, with its first attempt
            row.update(status=TaskStatus.ASSIGNED, agent_id=claimed.agent_id, lease=claimed.lease, attempts=1)

        assigned = self.dispatcher.assignment_rows([claimed]) if claimed is not None else []
        try:
            await self.db.write(task_store.submission(row, assigned, now), new_rows=True)
        except BaseException as exc:
            if claimed is not None:
                self.dispatcher.unclaim(claimed)
            # a concurrent submit with the same key won
            if isinstance(exc, DuplicateKey) and sub.idempotency_key:
                if existing := await self._keyed(sub.idempotency_key):
                    return self._same_submission(existing, sub)
            raise
        if claimed is None:
            if cancels := self.accepted(row):  # a limit's strategy: it, or older tasks of its key
                row = (await self._settle(cancels, [row]))[0]
            return self.view(row)
        if row["expires_at"] is not None:
            self.timers.expire_at(ReadyTask.from_row(row), row["expires_at"])
        self.events.publish(TaskSubmitted(task_id=row["id"], type=row["type"], priority=row["priority"]))
        await self.dispatcher.deliver([claimed], now)
        return self.view(row)

    async def submit_many(self, subs: list[TaskSubmit]) -> list[Task]:
        """Submit several tasks in one transaction: all are accepted, or none (a key already used
        with another payload refuses the whole batch). A key already used with the same submission
        gives back that task, as a single submit does."""
        keys = [sub.idempotency_key for sub in subs if sub.idempotency_key]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise Invalid(f"tasks: idempotency_key {dup!r} is given twice in the batch")
        rows = [self.new_row(sub) for sub in subs]

        def write(conn: Any) -> list[tuple[dict[str, Any], bool]]:
            existing = task_store.find_by_idempotency_keys(conn, keys)
            out = []
            for sub, row in zip(subs, rows, strict=True):
                if sub.idempotency_key and (found := existing.get(sub.idempotency_key)):
                    self._same_submission(found, sub)  # raises Conflict: nothing is written
                    out.append((found, False))
                else:
                    out.append((row, True))
            task_store.insert_tasks(conn, [row for row, new in out if new])
            return out

        try:
            written = await self.db.write(write, heavy=len(rows) > HEAVY_ROWS)
        except DuplicateKey:  # a concurrent submit took one of the keys: read them again, once
            written = await self.db.write(write, heavy=len(rows) > HEAVY_ROWS)
        cancels = [job for row, new in written if new for job in self.accepted(row)]
        rows = [row for row, _ in written]
        if cancels:  # a limit's strategy cancelled some of them, or older tasks of their keys
            rows = await self._settle(cancels, rows)
        return [self.view(row) for row in rows]

    async def _settle(
        self, cancels: list[asyncio.Task[bool]], rows: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The rows once the cancels a limit's strategy started are over (read again)."""
        await asyncio.wait(cancels)
        ids = [row["id"] for row in rows]
        fresh = await self.db.read(lambda c: {i: task_store.get_task(c, i) for i in ids})
        return [fresh.get(row["id"]) or row for row in rows]

    def view(self, row: dict[str, Any]) -> Task:
        """The task, with why it waits: a pause holding it, or a limit."""
        task = task_view(row, self.dispatcher.holding)
        task.waiting_reason = task.waiting_reason or self._waiting(row)
        return task

    def accepted(self, row: dict[str, Any]) -> list[asyncio.Task[bool]]:
        """A committed task enters the queue, or waits until it is due (also called by the workflow
        engine for its steps); returns the cancels its limits' strategies started."""
        task = ReadyTask.from_row(row)
        if row.get("status") == TaskStatus.SCHEDULED:
            self.timers.schedule(task, row["not_before"])
        else:
            self.dispatcher.enqueue(task)
        if row.get("expires_at") is not None:
            self.timers.expire_at(task, row["expires_at"])
        self.events.publish(TaskSubmitted(task_id=row["id"], type=row["type"], priority=row["priority"]))
        if task.limits and self.limit_service is not None:
            return self.limit_service.arrived(task, self.dispatcher.cancel)
        return []

    def new_row(self, sub: TaskSubmit, run_id: str | None = None) -> dict[str, Any]:
        """The row of a new pending task; raises TooLarge for a payload over max_payload_bytes."""
        self.limits.check_payload(sub.payload)
        now = self.clock()
        not_before = sub.at or (now + timedelta(seconds=sub.delay) if sub.delay is not None else None)
        expires_at = now + timedelta(seconds=sub.expires_in) if sub.expires_in is not None else None
        if expires_at is not None and not_before is not None and expires_at <= not_before:
            raise Invalid(f"expires_in: the task would expire before it is due (at {not_before.isoformat()})")
        scheduled = not_before is not None and not_before > now  # a time past or now: pending at once
        options = {
            "retry": sub.retry.model_dump(),
            "timeout": sub.timeout,
            "stall_timeout": sub.stall_timeout,
            "success_when": sub.success_when,
        }
        if sub.budget is not None or sub.estimate is not None:
            if self.budget_check is not None:
                self.budget_check(sub, run_id)
            options["budget"] = sub.budget.model_dump(exclude_none=True) if sub.budget else None
            options["estimate"] = sub.estimate.model_dump(exclude_none=True) if sub.estimate else None
        if sub.limits:  # checked and their keys rendered now: a bad one is refused, nothing stored
            if self.limit_service is None:
                raise Invalid("limits: this hived has no limits")
            options["limits"] = self.limit_service.resolve(sub.limits, sub.payload)
        if sub.labels and (source := sub.labels.get(WORKSPACE_LABEL)):
            options[AFFINITY_OPTION] = source  # continues that task's workspace branch (affinity)
        return {
            "id": str(uuid.uuid4()),
            "seq": self.dispatcher.next_seq(),
            "type": sub.type,
            "priority": sub.priority,
            "status": TaskStatus.SCHEDULED if scheduled else TaskStatus.PENDING,
            "agent_id": None,
            "requires": sub.requires,
            "payload": sub.payload,
            "result": None,
            "error": None,
            "attempts": 0,
            "max_attempts": sub.max_attempts,
            "lease": None,
            "options": options,
            "idempotency_key": sub.idempotency_key,
            "run_id": run_id,
            "next_attempt_at": None,
            "labels": sub.labels or None,
            "not_before": not_before,
            "expires_at": expires_at,
            "created_at": now,
            "started_at": None,
            "completed_at": None,
        }

    async def _keyed(self, key: str) -> dict[str, Any] | None:
        return await self.db.read(lambda c: task_store.find_by_idempotency_key(c, key))

    @staticmethod
    def _same_submission(existing: dict[str, Any], sub: TaskSubmit) -> Task:
        if existing["payload"] != sub.payload or existing["type"] != sub.type:
            raise Conflict(
                f"idempotency_key {sub.idempotency_key!r} was used by task {existing['id']} "
                "with another type or payload"
            )
        return task_view(existing)  # (a static method: no waiting_reason here)

    # --- reads ------------------------------------------------------------------------------------

    async def _row(self, ref: str) -> dict[str, Any]:
        return await self.db.read(lambda c: _resolve(c, ref))

    async def get(self, ref: str, wait: float = 0.0) -> TaskDetail:
        """The task; with `wait`, once it has ended or `wait` s have passed (a long-poll)."""
        if wait > 0 and self.dispatcher.holds(ref):
            task_id = ref  # a full id, unfinished: nothing to read before waiting
        else:
            task = await self._detail(ref)
            if wait <= 0 or TaskStatus(task.status).final:
                return task
            task_id = task.id
        await self._ended(task_id, wait)
        return await self._detail(task_id)

    async def outcome(self, task: Task, wait: float) -> Task:
        """`task`, just submitted, once it has ended or `wait` s have passed (`POST /tasks?wait=`)."""
        if wait <= 0 or TaskStatus(task.status).final:
            return task
        await self._ended(task.id, wait)
        row = await self.db.read(lambda conn: task_store.get_task(conn, task.id))
        return self.view(row) if row is not None else task

    async def _ended(self, task_id: str, wait: float) -> None:
        """Until the task (a full id) has ended, or `wait` s have passed."""

        def ended(event: TaskEnded | None) -> bool:  # None: has it ended already?
            return event.task_id == task_id if event else not self.dispatcher.holds(task_id)

        await self.events.wait_until(TaskEnded, ended, wait)

    async def _detail(self, ref: str) -> TaskDetail:
        usage_read = self.usage_read

        def read(conn: Any) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
            row = _resolve(conn, ref)
            usage = usage_read(conn, row["id"], row["run_id"]) if usage_read is not None else None
            return row, task_store.get_attempts(conn, row["id"]), usage

        row, attempts, usage = await self.db.read(read)
        history = [Attempt.model_validate(a) for a in attempts]
        fields = _fields(row, self.dispatcher.holding)
        fields["waiting_reason"] = fields["waiting_reason"] or self._waiting(row)
        detail = TaskDetail(**fields, attempt_history=history)
        return self.usage_view(detail, usage) if self.usage_view is not None else detail

    def _waiting(self, row: dict[str, Any]) -> str | None:
        """Why a pending task that names limits has not started: `limit NAME[KEY]`."""
        if row["status"] != TaskStatus.PENDING or not (row["options"] or {}).get("limits"):
            return None
        return self.dispatcher.gate.reason(row["id"])

    async def list(
        self,
        status: str | None = None,
        type: str | None = None,
        agent: str | None = None,
        limit: int = 100,
        offset: int = 0,
        run: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> tuple[list[Task], int]:
        agent_id = self.agent_id_of(agent) if agent else None
        run_id = await self.run_id_of(run) if run and self.run_id_of else run
        rows, total = await self.db.read(
            lambda c: task_store.list_tasks(
                c,
                status=status,
                type=type,
                agent_id=agent_id,
                run_id=run_id,
                limit=limit,
                offset=offset,
                max_bytes=self.limits.max_page_bytes,
                labels=labels,
            ),
            streamed=True,
        )
        return [self.view(r) for r in rows], total

    async def output(self, task_id: str) -> str:
        """The captured output of every attempt, oldest first, each under a header line."""
        attempts = await self.db.read(lambda c: task_store.get_attempts(c, task_id))
        parts = []
        for a in attempts:
            parts.append(f"--- attempt {a['number']} ({a['outcome'] or 'running'})\n")
            parts.append(a["output"] or "")
            if a["output"] and not a["output"].endswith("\n"):
                parts.append("\n")
        return "".join(parts)

    # --- changes ----------------------------------------------------------------------------------

    async def cancel(self, ref: str) -> Task:
        row = await self._row(ref)
        if TaskStatus(row["status"]).final:
            raise Conflict(f"task {row['id']} is already {row['status']}")
        if not await self.dispatcher.cancel(row["id"]):
            raise Conflict(f"task {row['id']} ended before it could be cancelled")
        return await self.get(row["id"])

    async def retry(self, ref: str) -> Task:
        row = await self._row(ref)
        if TaskStatus(row["status"]) not in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            raise Conflict(
                f"task {row['id']} is {row['status']}: only failed or cancelled tasks can be retried"
            )
        TaskStatus(row["status"]).transition(TaskStatus.PENDING)
        seq = self.dispatcher.next_seq()
        if not await self.db.write(lambda c: task_store.resubmit(c, row["id"], seq)):
            raise Conflict(f"task {row['id']} changed meanwhile; try again")
        fresh = await self.db.read(lambda c: task_store.get_task(c, row["id"]))
        assert fresh is not None
        self.dispatcher.enqueue(ReadyTask.from_row(fresh))
        return self.view(fresh)

    async def bulk(self, action: Literal["cancel", "retry"], request: BulkRequest) -> BulkResult:
        """Cancel or retry the tasks matching a filter, at most `request.limit` of them."""
        return await bulk(self.dispatcher, action, request)


def _resolve(conn: Any, ref: str) -> dict[str, Any]:
    try:
        row = task_store.resolve_task(conn, ref)
    except task_store.AmbiguousPrefix:
        raise Conflict(f"task id prefix {ref!r} is ambiguous") from None
    if row is None:
        raise NotFound(f"task {ref!r} not found")
    return row
