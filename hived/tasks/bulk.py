"""Bulk actions on tasks (`hivectl task cancel|retry --status S [--type T] [--label K=V]`): the tasks
matching a filter are cancelled or retried in one request, at most `limit` (1,000) of them, the
oldest first; `remaining` tells the caller to send the request again for the rest."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from hived.errors import Invalid
from hived.model.queue import BulkRequest, BulkResult, check_bulk_status
from hived.store import tasks as task_store
from hived.tasks.attempts import ReadyTask
from hived.tasks.dispatcher import Dispatcher


async def bulk(dispatcher: Dispatcher, action: Literal["cancel", "retry"], req: BulkRequest) -> BulkResult:
    if problem := check_bulk_status(action, req.status):
        raise Invalid(problem)
    db = dispatcher.db
    ids, total = await db.read(
        lambda c: task_store.matching_ids(c, req.status, req.type, req.labels, req.limit)
    )
    if action == "cancel":
        # Each is the single cancel's end (a cancel racing a result is decided by the first commit);
        # the group-commit writer puts them in a few transactions.
        done = await asyncio.gather(*(dispatcher.cancel(task_id) for task_id in ids))
        changed = [task_id for task_id, ok in zip(ids, done, strict=True) if ok]
    else:
        changed = await _retry(dispatcher, ids)
    return BulkResult(action=action, matched=total, changed=changed, remaining=max(0, total - len(ids)))


async def _retry(dispatcher: Dispatcher, ids: list[str]) -> list[str]:
    """Failed or cancelled tasks queued again, in one commit (a task that changed meanwhile is left)."""
    seqs = {task_id: dispatcher.next_seq() for task_id in ids}

    def write(conn: Any) -> list[dict[str, Any]]:
        changed = [t for t in ids if task_store.resubmit(conn, t, seqs[t])]
        return [row for t in changed if (row := task_store.get_task(conn, t)) is not None]

    rows: list[dict[str, Any]] = await dispatcher.db.write(write)
    for row in rows:
        dispatcher.enqueue(ReadyTask.from_row(row))
    return [row["id"] for row in rows]

