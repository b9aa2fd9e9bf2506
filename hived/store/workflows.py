"""Workflow template, run, step and run-context statements. Each takes an open connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from hived.store.models import RunContextRow, RunRow, RunStepRow, WorkflowRow
from hived.store.tasks import get_task

workflows = WorkflowRow.__table__
runs = RunRow.__table__
steps = RunStepRow.__table__
context = RunContextRow.__table__

ACTIVE_RUN = ("pending", "running", "paused")
STEP_FIELDS = (
    *("status", "task_id", "agent_id", "result", "error", "decided_by", "started_at", "finished_at"),
    "child_run_id",
)


# --- templates ------------------------------------------------------------------------------------


def latest_workflow(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(workflows).where(workflows.c.name == name).order_by(workflows.c.version.desc()).limit(1)
    ).first()
    return dict(row._mapping) if row else None


def workflow_by_id(conn: Connection, prefix: str) -> list[dict[str, Any]]:
    """Templates whose id is `prefix` or starts with it (at most two: enough to say ambiguous)."""
    exact = conn.execute(select(workflows).where(workflows.c.id == prefix)).first()
    if exact:
        return [dict(exact._mapping)]
    rows = conn.execute(select(workflows).where(workflows.c.id.like(f"{prefix}%")).limit(2))
    return [dict(r) for r in rows.mappings()]


def workflow_version(conn: Connection, name: str, version: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(workflows).where(workflows.c.name == name, workflows.c.version == version)
    ).first()
    return dict(row._mapping) if row else None


def insert_workflow(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(workflows), [row])


def list_workflows(conn: Connection) -> list[dict[str, Any]]:
    """The newest version of every template, by name."""
    newest = (
        select(workflows.c.name, func.max(workflows.c.version).label("version"))
        .group_by(workflows.c.name)
        .subquery()
    )
    query = (
        select(workflows)
        .join(newest, (workflows.c.name == newest.c.name) & (workflows.c.version == newest.c.version))
        .order_by(workflows.c.name)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


# --- runs and steps -------------------------------------------------------------------------------


def insert_run(conn: Connection, run: dict[str, Any], step_rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(runs), [run])
    conn.execute(insert(steps), step_rows)


def update_run(conn: Connection, run_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


def update_steps(conn: Connection, run_id: str, rows: list[dict[str, Any]]) -> None:
    """Write the full state of each changed step (rows of {step_id, status, task_id, ...})."""
    if not rows:
        return
    stmt = (
        update(steps)
        .where(steps.c.run_id == run_id, steps.c.step_id == bindparam("b_step"))
        .values({name: bindparam(f"b_{name}") for name in STEP_FIELDS})
    )
    conn.execute(stmt, [{"b_step": r["step_id"], **{f"b_{n}": r[n] for n in STEP_FIELDS}} for r in rows])


def run_by_id(conn: Connection, prefix: str) -> list[dict[str, Any]]:
    exact = conn.execute(select(runs).where(runs.c.id == prefix)).first()
    if exact:
        return [dict(exact._mapping)]
    rows = conn.execute(select(runs).where(runs.c.id.like(f"{prefix}%")).limit(2))
    return [dict(r) for r in rows.mappings()]


def run_steps(conn: Connection, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in run_ids}
    if not run_ids:
        return found
    query = select(steps).where(steps.c.run_id.in_(run_ids)).order_by(steps.c.run_id, steps.c.position)
    for row in conn.execute(query).mappings():
        found[row["run_id"]].append(dict(row))
    return found


def list_runs(
    conn: Connection, status: str | None, workflow: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    query = select(runs)
    if status:
        query = query.where(runs.c.status == status)
    if workflow:
        query = query.where(runs.c.workflow == workflow)
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar() or 0
    rows = conn.execute(query.order_by(runs.c.created_at.desc(), runs.c.id).limit(limit).offset(offset))
    return [dict(r) for r in rows.mappings()], int(total)


def active_runs(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(runs).where(runs.c.status.in_(ACTIVE_RUN)).order_by(runs.c.created_at))
    return [dict(r) for r in rows.mappings()]


def runs_to_resume(
    conn: Connection, run_id: str | None = None, driver: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The active runs (or that one; or those `driver`, a node, drives), their steps, their workflows'
    definitions, and the tasks of their running steps."""
    if run_id is not None:
        rows = [r for r in active_runs(conn) if r["id"] == run_id]
    else:
        rows = [r for r in active_runs(conn) if driver is None or r["driver"] in (None, driver)]
    run_steps_ = run_steps(conn, [r["id"] for r in rows])
    specs = workflow_definitions(conn, list({r["workflow_id"] for r in rows}))
    running = [s["task_id"] for ss in run_steps_.values() for s in ss if s["status"] == "running"]
    tasks = {task_id: get_task(conn, task_id) for task_id in running if task_id}
    return rows, run_steps_, specs, tasks


def workflow_definitions(conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    rows = conn.execute(select(workflows.c.id, workflows.c.definition).where(workflows.c.id.in_(ids)))
    return {r.id: r.definition for r in rows}


def run_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(runs.c.status, func.count()).group_by(runs.c.status))
    return {status: int(n) for status, n in rows}


# --- the shared run context ----------------------------------------------------------------------


def get_context(conn: Connection, run_id: str, key: str | None = None) -> list[dict[str, Any]]:
    query = select(context).where(context.c.run_id == run_id)
    if key is not None:
        query = query.where(context.c.key == key)
    return [dict(r) for r in conn.execute(query.order_by(context.c.key)).mappings()]


def put_context(
    conn: Connection, run_id: str, key: str, value: Any, expected: int | None, now: datetime
) -> tuple[bool, int]:
    """Compare-and-set: `expected` None writes unconditionally, 0 only creates, N only replaces
    version N. Returns (written, the version now stored; 0 when the key does not exist)."""
    current = conn.execute(
        select(context.c.version).where(context.c.run_id == run_id, context.c.key == key)
    ).scalar()
    if expected is not None and (current or 0) != expected:
        return False, int(current or 0)
    if current is None:
        conn.execute(
            insert(context), [{"run_id": run_id, "key": key, "value": value, "version": 1, "updated_at": now}]
        )
        return True, 1
    # The version in the WHERE makes a concurrent writer on another hived lose, not overwrite.
    done = conn.execute(
        update(context)
        .where(context.c.run_id == run_id, context.c.key == key, context.c.version == current)
        .values(value=value, version=current + 1, updated_at=now)
    ).rowcount
    if not done:
        latest = conn.execute(
            select(context.c.version).where(context.c.run_id == run_id, context.c.key == key)
        ).scalar()
        return False, int(latest or 0)
    return True, current + 1
