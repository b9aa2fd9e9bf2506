"""The dispatcher's recovery at start: what the last run of hived left, back in its books."""

from __future__ import annotations

from collections.abc import Callable

from hived.model.states import AttemptReason, TaskStatus
from hived.store import tasks as task_store
from hived.tasks.attempts import AgentChannel, Ending, InFlight, ReadyTask
from hived.tasks.ledger import Ledger

Attach = Callable[[str, list[str], int], AgentChannel]


async def recover(
    d: Ledger,
    attach: Attach,
    adopted: dict[str, tuple[list[str], int]],
    here: Callable[[str], bool] | None = None,
) -> tuple[int, int, int]:
    """Ready tasks back in the queue. Attempts in flight on an adopted agent (still running; {id:
    (capabilities, max_concurrency)}) stay its own until it reconnects and reports; other in-flight
    attempts end with reason `daemon_restart` and follow the retry policy, except, on a node of a
    cluster, those of agents another node supervises (`here(agent_id)` false). Returns the number of
    unfinished tasks found and the highest sequence and lease numbers in the database."""
    seq, lease = await d.db.read(task_store.max_seq_and_lease)
    rows = await d.db.read(task_store.load_unfinished)
    orphans = []
    for row in rows:
        task = ReadyTask.from_row(row)
        if row["status"] == TaskStatus.PENDING:
            d._enqueue(task)
        elif row["status"] == TaskStatus.RETRYING:
            due = row["next_attempt_at"] or d.clock.now()
            d._schedule_retry(task, max(0.0, (due - d.clock.now()).total_seconds()))
        elif row["agent_id"] in adopted:
            caps, max_concurrency = adopted[row["agent_id"]]
            channel = attach(row["agent_id"], caps, max_concurrency)
            channel.routable = False
            entry = InFlight(
                task,
                row["agent_id"],
                row["lease"],
                row["attempts"],
                delivered=True,
                delivered_mono=d.clock.monotonic(),
                waiting=row["status"] == TaskStatus.WAITING_INPUT,
            )
            d.in_flight[task.id] = entry
            d.gate.hold(task)  # what running tasks hold of limits is derived from them
            channel.held.add(task.id)
            channel.slot.in_flight += 1
        elif here is None or here(row["agent_id"] or ""):
            orphans.append(InFlight(task, row["agent_id"] or "", row["lease"] or 0, row["attempts"]))
    error = "hived restarted while the attempt ran"
    await d._end_attempts(
        [Ending(e, False, error=error, reason=AttemptReason.DAEMON_RESTART) for e in orphans]
    )
    return len(rows), seq, lease
