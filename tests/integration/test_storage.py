"""Storage and queue on a real SQLite file and a real PostgreSQL server (each test runs on both)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect, text

from hived.model.schemas import AttemptResult
from hived.orchestrator import AgentOrchestrator
from hived.store import tasks as task_store
from hived.store.db import Database


@pytest.fixture
async def orch(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    orchestrator = AgentOrchestrator(db_url, tmp_path / "state")
    await orchestrator.start()
    yield orchestrator
    await orchestrator.shutdown()


async def test_migrations_create_the_schema(orch: AgentOrchestrator) -> None:
    tables = set(await orch.db.read(lambda c: inspect(c).get_table_names()))
    indexes = {i["name"] for i in await orch.db.read(lambda c: inspect(c).get_indexes("tasks"))}
    assert {
        "agents",
        "agent_incarnations",
        "tasks",
        "task_attempts",
        "workflows",
        "workflow_runs",
        "run_steps",
        "run_context",
        "alembic_version",
    } <= tables
    assert {"idx_tasks_ready", "idx_tasks_agent_id", "idx_tasks_created_at"} <= indexes
    assert "idx_tasks_status" not in indexes  # 0005: idx_tasks_ready (status, ...) serves it
    assert await orch.db.migrations_current()


async def test_submit_is_durable_and_readable(orch: AgentOrchestrator) -> None:
    task_id = await orch.submit_task(
        {
            "type": "code_review",
            "payload": {"repo": "r", "pr": "123"},
            "priority": 7,
            "requires": ["git", "python"],
        }
    )
    task = await orch.get_task(task_id)
    assert task.status == "pending" and task.priority == 7
    assert task.payload == {"repo": "r", "pr": "123"} and task.requires == ["git", "python"]
    assert task.created_at.tzinfo is not None
    assert (await orch.get_task(task_id[:8])).id == task_id  # unique prefix


async def test_lease_complete_and_fencing(orch: AgentOrchestrator) -> None:
    task_id = await orch.submit_task({"type": "t", "payload": {"n": 1}})
    orch.dispatcher.attach("agent-a", [], 1)
    leases, _ = await orch.dispatcher.take("agent-a", slots=1, wait=5)
    assert [lease.task_id for lease in leases] == [task_id]
    lease = leases[0]
    assert (await orch.get_task(task_id)).agent_id == "agent-a"

    stale = AttemptResult(task_id=task_id, attempt=1, lease=lease.lease + 1, ok=True, result={"x": 1})
    [ack] = await orch.dispatcher.report("agent-a", [stale])
    assert not ack.accepted and "stale" in (ack.reason or "")

    good = AttemptResult(task_id=task_id, attempt=1, lease=lease.lease, ok=True, result={"x": 2})
    [ack] = await orch.dispatcher.report("agent-a", [good])
    assert ack.accepted
    [again] = await orch.dispatcher.report("agent-a", [good])  # a duplicate is refused
    assert not again.accepted
    task = await orch.get_task(task_id)
    assert task.status == "completed" and task.result == {"x": 2} and task.attempts == 1
    assert [a.outcome for a in task.attempt_history] == ["completed"]


async def test_failed_attempt_retries_then_fails(orch: AgentOrchestrator) -> None:
    task_id = await orch.submit_task(
        {"type": "t", "max_attempts": 2, "retry": {"initial": "10ms", "jitter": 0}}
    )
    orch.dispatcher.attach("a", [], 1)
    for attempt in (1, 2):
        [lease], _ = await orch.dispatcher.take("a", slots=1, wait=5)
        assert lease.attempt == attempt
        await orch.dispatcher.report(
            "a",
            [
                AttemptResult(
                    task_id=task_id,
                    attempt=attempt,
                    lease=lease.lease,
                    ok=False,
                    error=f"boom {attempt}",
                    reason="error",
                )
            ],
        )
    task = await orch.get_task(task_id)
    assert task.status == "failed" and task.error == "boom 2" and task.attempts == 2
    assert [a.outcome for a in task.attempt_history] == ["failed", "failed"]


async def test_unfinished_work_survives_a_restart(db_url: str, tmp_path: Path) -> None:
    first = AgentOrchestrator(db_url, tmp_path / "state")
    await first.start()
    queued = await first.submit_task({"type": "t", "priority": 1})
    running = await first.submit_task({"type": "t", "priority": 9})
    first.dispatcher.attach("a", [], 1)
    [lease], _ = await first.dispatcher.take("a", slots=1, wait=5)
    assert lease.task_id == running
    await first.db.close()  # like a crash: no orderly shutdown of the queue
    await first.ownership.release()  # what the kernel or the server does when a process dies

    second = AgentOrchestrator(db_url, tmp_path / "state")
    await second.start()
    try:
        assert queued in second.dispatcher.queue
        orphan = await second.get_task(running)
        assert orphan.status == "retrying" and orphan.attempt_history[0].reason == "daemon_restart"
        # the old lease is dead: its late completion is refused
        [ack] = await second.dispatcher.report(
            "a", [AttemptResult(task_id=running, attempt=1, lease=lease.lease, ok=True)]
        )
        assert not ack.accepted
    finally:
        await second.shutdown()


async def test_idempotency_key(orch: AgentOrchestrator) -> None:
    from hived.errors import Conflict

    first = await orch.submit_task({"type": "t", "payload": {"a": 1}, "idempotency_key": "k1"})
    assert await orch.submit_task({"type": "t", "payload": {"a": 1}, "idempotency_key": "k1"}) == first
    with pytest.raises(Conflict):
        await orch.submit_task({"type": "t", "payload": {"a": 2}, "idempotency_key": "k1"})
    tasks, total = await orch.list_tasks()
    assert total == 1 and tasks[0].id == first


async def test_cancel_queued_task(orch: AgentOrchestrator) -> None:
    task_id = await orch.submit_task({"type": "t"})
    task = await orch.cancel_task(task_id)
    assert task.status == "cancelled"
    orch.dispatcher.attach("a", [], 1)
    leases, _ = await orch.dispatcher.take("a", slots=1, wait=0.2)
    assert leases == []


async def test_execute_workflow_through_the_facade(orch: AgentOrchestrator) -> None:
    """The PRD's execute_workflow, with the test acting as the agent over the dispatcher: the second
    step gets the first one's result in its payload; the run is durable in both databases."""
    workflow = {
        "name": "two",
        "params": {"n": 1},
        "steps": [
            {"id": "a", "type": "t", "payload": {"n": "${{ params.n }}"}},
            {"id": "b", "type": "t", "needs": ["a"], "payload": {"twice": "${{ steps.a.result.n * 2 }}"}},
        ],
    }
    run = await orch.execute_workflow(workflow, {"n": "21"})
    assert run.status in ("pending", "running") and run.params == {"n": 21}
    orch.dispatcher.attach("agent-a", [], 1)
    for expected, result in (({"n": 21}, {"n": 21}), ({"twice": 42}, {"done": True})):
        leases, _ = await orch.dispatcher.take("agent-a", slots=1, wait=5)
        assert [lease.payload for lease in leases] == [expected]
        lease = leases[0]
        acks = await orch.dispatcher.report(
            "agent-a",
            [
                AttemptResult(
                    task_id=lease.task_id, attempt=lease.attempt, lease=lease.lease, ok=True, result=result
                )
            ],
        )
        assert acks[0].accepted
    await orch.engine.idle()
    done = await orch.workflows.get_run(run.id)
    assert done.status == "succeeded"
    assert [(s.id, s.status, s.result) for s in done.steps] == [
        ("a", "succeeded", {"n": 21}),
        ("b", "succeeded", {"done": True}),
    ]
    assert done.steps[1].agent_id == "agent-a"


async def test_a_page_ends_early_at_max_bytes(orch: AgentOrchestrator) -> None:
    """Rows are streamed (a server-side cursor on PostgreSQL) and the page stops at the byte bound."""
    for i in range(6):
        await orch.submit_task({"type": "big", "payload": {"blob": str(i) * 10_000}})

    def page(c: Any, offset: int) -> tuple[list[dict[str, Any]], int]:
        return task_store.list_tasks(
            c, status=None, type="big", agent_id=None, run_id=None, limit=6, offset=offset, max_bytes=25_000
        )

    rows, total = await orch.db.read(lambda c: page(c, 0), streamed=True)
    assert total == 6 and [r["payload"]["blob"][0] for r in rows] == ["5", "4"]
    rows, _ = await orch.db.read(lambda c: page(c, 4), streamed=True)
    assert [r["payload"]["blob"][0] for r in rows] == ["1", "0"]


async def test_the_writer_keeps_its_connection_between_batches(db_url: str) -> None:
    """A pool checkout (and, on PostgreSQL, its ping) per batch cost as much as the batch."""
    db = Database(db_url)
    await db.migrate()
    db.start()
    checkouts: list[int] = []
    engine = db._async.sync_engine if db._async is not None else db._sync_writer
    assert engine is not None
    event.listen(engine.pool, "checkout", lambda *_: checkouts.append(1))
    try:
        for _ in range(20):
            await db.write(lambda c: c.execute(text("SELECT 1")))
    finally:
        await db.close()
    assert len(checkouts) <= 1


@pytest.mark.pg
async def test_a_submit_commits_beside_a_write_that_waits(pg_database: str) -> None:
    """PostgreSQL: writes of new rows only (`new_rows`, a submit) have a lane of their own, so a
    client submitting does not wait behind the other writes' commit (here one blocked on a lock)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    db = Database(pg_database)
    await db.migrate()
    db.start()
    dsn = make_url(pg_database).set(drivername="postgresql").render_as_string(False)
    outside = await asyncpg.connect(dsn)
    try:
        await db.write(lambda c: c.execute(text("CREATE TABLE probe (key text PRIMARY KEY, value text)")))
        await db.write(lambda c: c.execute(text("INSERT INTO probe (key, value) VALUES ('k', '1')")))
        locker = outside.transaction()
        await locker.start()
        await outside.execute("SELECT * FROM probe WHERE key = 'k' FOR UPDATE")
        blocked = asyncio.ensure_future(
            db.write(lambda c: c.execute(text("UPDATE probe SET value = '2' WHERE key = 'k'")))
        )
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        deadline = asyncio.get_running_loop().time() + 10
        while not await outside.fetchval(waiting):  # the main lane's UPDATE waits for the lock
            assert asyncio.get_running_loop().time() < deadline, "the UPDATE never waited for the lock"
            await asyncio.sleep(0.01)
        assert not blocked.done()
        insert = text("INSERT INTO probe (key, value) VALUES ('new', '1')")
        await asyncio.wait_for(db.write(lambda c: c.execute(insert), new_rows=True), 10)
        await locker.rollback()
        await asyncio.wait_for(blocked, 10)
        rows = await db.read(lambda c: dict(c.execute(text("SELECT key, value FROM probe")).all()))
        assert rows["k"] == "2" and rows["new"] == "1"
    finally:
        await outside.close()
        await db.close()


@pytest.mark.pg
async def test_a_read_after_the_server_cut_every_session_is_read_again_on_a_new_connection(
    pg_database: str,
) -> None:
    """No ping at each checkout (a round trip per read): a read that meets a pooled connection the
    server has closed is read again on a new one, and the caller sees its rows, not an error."""
    db = Database(pg_database)
    await db.migrate()
    db.start()
    import asyncpg
    from sqlalchemy.engine import make_url

    outside = await asyncpg.connect(
        make_url(pg_database).set(drivername="postgresql").render_as_string(False)
    )
    pid = text("SELECT pg_backend_pid()")
    try:
        first = await asyncio.gather(*(db.read(lambda c: c.execute(pid).scalar()) for _ in range(3)))
        cut = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
        await outside.execute(cut + " AND pid <> pg_backend_pid()")
        again = await db.read(lambda c: c.execute(pid).scalar())
        assert again not in first  # a new session
        assert await db.read(lambda c: c.execute(text("SELECT count(*) FROM tasks")).scalar()) == 0
    finally:
        await outside.close()
        await db.close()
