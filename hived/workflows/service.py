"""Workflow templates (versioned), runs as clients see them, and the shared run context: what the
API's workflow and run routes call. The engine (hived.workflows.engine) does the running."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from hived import redact
from hived.bounds import Limits
from hived.errors import Conflict, Invalid, NotFound
from hived.events import RunChanged
from hived.model.runs import AppliedWorkflow, ContextEntry, Run, RunStep, WorkflowInfo
from hived.model.states import RunStatus, StepStatus
from hived.model.waits import waiting_until
from hived.model.workflow import ParamError, WorkflowSpec, coerce_params, describe, graph_errors, step_type
from hived.store import tasks as task_store
from hived.store import workflows as store
from hived.store.db import Database, DuplicateKey
from hived.workflows.engine import WorkflowEngine
from hived.workflows.fanout import progress
from hived.workflows.nesting import nest_children
from hived.workflows.references import check_references
from hived.workflows.rerun import rerun

MAX_CONTEXT_KEY = 255


def workflow_view(row: dict[str, Any]) -> WorkflowInfo:
    spec = row["definition"]
    return WorkflowInfo(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        description=spec.get("description"),
        params=spec.get("params", {}),
        steps=spec["steps"],
        timeout=spec.get("timeout"),
        created_at=row["created_at"],
    )


class WorkflowService:
    def __init__(self, db: Database, engine: WorkflowEngine, limits: Limits | None = None) -> None:
        self.db = db
        self.engine = engine
        self.limits = limits or Limits()
        self.usage_view: Callable[[Run], Awaitable[Run]] | None = None  # set by the root (hived.usage)

    # --- templates --------------------------------------------------------------------------------

    async def apply(self, spec: WorkflowSpec) -> AppliedWorkflow:
        """Store a template; a new version only when its content changed."""
        if errors := graph_errors(spec):
            raise Invalid("; ".join(describe(e) for e in errors))
        await check_references(self.db, spec)  # sub-workflows: known, their params, no cycle
        definition = spec.definition()

        def write(conn: Any) -> tuple[dict[str, Any], str]:
            latest = store.latest_workflow(conn, spec.name)
            if latest is not None and latest["definition"] == definition:
                return latest, "unchanged"
            now = datetime.now(UTC)
            row = {
                "id": str(uuid.uuid4()),
                "name": spec.name,
                "version": (latest["version"] + 1) if latest else 1,
                "definition": definition,
                "status": "active",
                "created_at": now,
                "updated_at": now,
            }
            store.insert_workflow(conn, row)
            return row, "updated" if latest else "created"

        try:
            row, action = await self.db.write(write)
        except DuplicateKey:
            raise Conflict(f"workflow {spec.name!r} was changed concurrently; apply again") from None
        return AppliedWorkflow(**workflow_view(row).model_dump(), action=action)

    async def resolve(self, ref: str, version: int | None = None) -> dict[str, Any]:
        """A template by name (newest version, or `version`), by id or by unique id prefix."""

        def read(conn: Any) -> dict[str, Any] | None:
            if version is not None:
                return store.workflow_version(conn, ref, version)
            if row := store.latest_workflow(conn, ref):
                return row
            if len(ref) < 4:
                return None
            rows = store.workflow_by_id(conn, ref)
            if len(rows) > 1:
                raise Conflict(f"workflow id prefix {ref!r} is ambiguous")
            return rows[0] if rows else None

        row = await self.db.read(read)
        if row is None:
            suffix = f" version {version}" if version is not None else ""
            raise NotFound(
                f"workflow {ref!r}{suffix} not found (apply it first: hivectl workflow apply FILE)"
            )
        return row

    async def get(self, ref: str, version: int | None = None) -> WorkflowInfo:
        return workflow_view(await self.resolve(ref, version))

    async def list(self) -> list[WorkflowInfo]:
        return [workflow_view(r) for r in await self.db.read(store.list_workflows)]

    # --- runs -------------------------------------------------------------------------------------

    async def execute(self, ref: str, params: dict[str, Any], version: int | None = None) -> Run:
        workflow = await self.resolve(ref, version)
        try:
            values = coerce_params(workflow["definition"].get("params", {}), params)
        except ParamError as exc:
            raise Invalid(str(exc)) from None
        run_id = await self.engine.start_run(workflow, values)
        return await self.get_run(run_id)

    async def run_id(self, ref: str) -> str:
        def read(conn: Any) -> str:
            rows = store.run_by_id(conn, ref) if len(ref) >= 4 else []
            if len(rows) > 1:
                raise Conflict(f"run id prefix {ref!r} is ambiguous")
            if not rows:
                raise NotFound(f"run {ref!r} not found")
            return str(rows[0]["id"])

        return await self.db.read(read)

    async def get_run(self, ref: str, wait: float = 0.0, since: int | None = None) -> Run:
        """The run; with `wait`, once it has ended or `wait` s have passed (a long-poll); with `wait`
        and `since` (a revision the caller has seen), once the run's revision is another: the run
        or one of its steps changed."""
        run_id = await self.run_id(ref)
        if wait > 0 and since is not None:
            await self.engine.changed(run_id, since, wait)
        elif wait > 0:
            await self.engine.events.wait_until(RunChanged, lambda e: self._over(run_id, e), wait)
        runs = await self.db.read(lambda c: self._views(c, store.run_by_id(c, run_id)))
        return await self.usage_view(runs[0]) if self.usage_view is not None else runs[0]

    def _over(self, run_id: str, event: RunChanged | None) -> bool:
        if event is None:
            return run_id not in self.engine.runs  # not driven any more: it has ended
        return event.run_id == run_id and RunStatus(event.status).final

    async def list_runs(
        self, status: str | None, workflow: str | None, limit: int, offset: int
    ) -> tuple[list[Run], int]:
        def read(conn: Any) -> tuple[list[Run], int]:
            rows, total = store.list_runs(conn, status, workflow, limit, offset)
            return self._views(conn, rows), total

        return await self.db.read(read)

    async def rerun(self, ref: str, from_step: str | None) -> Run:
        """A new run keeping the results of the steps that succeeded (hived.workflows.rerun)."""
        run_id = await self.run_id(ref)
        return await self.get_run(await rerun(self.db, self.engine, run_id, from_step))

    def _views(self, conn: Any, rows: list[dict[str, Any]], depth: int = 0) -> list[Run]:
        steps = store.run_steps(conn, [r["id"] for r in rows])
        specs = store.workflow_definitions(conn, list({r["workflow_id"] for r in rows}))
        running = [s["task_id"] for ss in steps.values() for s in ss if s["status"] == StepStatus.RUNNING]
        running = [task_id for task_id in running if task_id]
        agents = task_store.agent_ids_of(conn, running)
        views = []
        for row in rows:
            defs = {s["id"]: s for s in specs[row["workflow_id"]]["steps"]}
            views.append(
                Run(
                    id=row["id"],
                    workflow=row["workflow"],
                    workflow_id=row["workflow_id"],
                    version=row["version"],
                    status=row["status"],
                    params=row["params"],
                    error=row["error"],
                    outputs=row["outputs"],
                    parent_run_id=row["parent_run_id"],
                    parent_step=row["parent_step"],
                    rerun_of=row["rerun_of"],
                    created_at=row["created_at"],
                    started_at=row["started_at"],
                    finished_at=row["finished_at"],
                    revision=self._revision(row),
                    steps=[
                        RunStep(
                            id=s["step_id"],
                            type=step_type(defs[s["step_id"]]),
                            needs=defs[s["step_id"]].get("needs", []),
                            status=s["status"],
                            task_id=s["task_id"],
                            agent_id=s["agent_id"] or agents.get(s["task_id"] or ""),
                            result=s["result"],
                            error=s["error"],
                            decided_by=s["decided_by"],
                            child_run_id=s["child_run_id"],
                            items=progress(self.engine.runs.get(row["id"]), s["step_id"]),
                            started_at=s["started_at"],
                            finished_at=s["finished_at"],
                            signal=(defs[s["step_id"]].get("wait_for") or {}).get("signal"),
                            waiting_until=waiting_until(defs[s["step_id"]], s),
                        )
                        for s in steps[row["id"]]
                    ],
                )
            )
        nest_children(conn, views, self._views, depth)
        return views

    def _revision(self, row: dict[str, Any]) -> int:
        """The engine's count for a run it drives (it counts assignments before writing them)."""
        live = self.engine.revision(row["id"])
        return max(live, row["revision"]) if live is not None else int(row["revision"])

    async def cancel(self, ref: str) -> Run:
        run_id = await self.run_id(ref)
        await self.engine.cancel(run_id)
        return await self.get_run(run_id)

    async def decide(
        self, ref: str, step: str, approve: bool, by: str, comment: str | None, rework: str | None = None
    ) -> Run:
        run_id = await self.run_id(ref)
        await self.engine.decide(run_id, step, approve, by, comment, rework)
        return await self.get_run(run_id)

    async def signal(self, ref: str, name: str, data: Any) -> Run:
        """Deliver signal `name` to the steps of the run waiting for it (their result: `data`)."""
        self.limits.check_payload(data, f"signal {name!r} data")
        run_id = await self.run_id(ref)
        await self.engine.signal(run_id, name, redact.scrub(data))
        return await self.get_run(run_id)

    # --- the shared run context -------------------------------------------------------------------

    async def context(self, ref: str, key: str | None = None) -> list[ContextEntry]:
        run_id = await self.run_id(ref)
        rows = await self.db.read(lambda c: store.get_context(c, run_id, key))
        if key is not None and not rows:
            raise NotFound(f"run {run_id} has no context key {key!r}")
        return [
            ContextEntry(key=r["key"], value=r["value"], version=r["version"], updated_at=r["updated_at"])
            for r in rows
        ]

    async def put_context(self, ref: str, key: str, value: Any, expected: int | None) -> ContextEntry:
        if not key or len(key) > MAX_CONTEXT_KEY:
            raise Invalid(f"context key must be 1-{MAX_CONTEXT_KEY} characters")
        if redact.holds_secret(key):  # masked, it would be another key: refused, and not echoed
            raise Invalid("context key holds a secret (a secret_env value or an API token): not stored")
        self.limits.check_payload(value, f"context value {key!r}")
        value = redact.scrub(value)  # handlers write what they hold: secrets are masked like results'
        run_id = await self.run_id(ref)
        now = datetime.now(UTC)
        try:
            done, version = await self.db.write(
                lambda c: store.put_context(c, run_id, key, value, expected, now)
            )
        except DuplicateKey:  # another writer created the key first
            done, version = False, -1
        if not done:
            have = (
                "does not exist"
                if version == 0
                else f"is at version {version}"
                if version > 0
                else "was just created"
            )
            raise Conflict(f"context key {key!r} {have}, not version {expected}: read it and try again")
        return ContextEntry(key=key, value=value, version=version, updated_at=now)
