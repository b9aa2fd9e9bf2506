"""What an attempt leaves besides its result: its workspace (branch, commits, diff; in the database,
`attempt_workspaces`) and its artifacts (files under `<state>/artifacts/<task>/<attempt>/`).

Both are fenced like results: a report or an artifact is taken only from the agent that holds the
attempt's current lease. A diff is kept up to `max_diff_bytes` (`diff_truncated` says it was cut);
an artifact up to `max_artifact_bytes`, and an attempt's artifacts up to `max_attempt_artifacts_bytes`
together. An artifact's name is a relative path below the attempt's folder: absolute paths, `..`
and `.` are refused (hived/model/workspaces.py), and the resolved path is checked to stay inside.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any

from hived.bounds import Limits, TooLarge
from hived.clock import SYSTEM_CLOCK, Clock
from hived.errors import Conflict, Invalid, NotFound
from hived.model.schemas import AttemptResult
from hived.model.workspaces import (
    Artifact,
    ArtifactChunk,
    ArtifactList,
    AttemptDiff,
    artifact_name_problem,
)
from hived.store import tasks as task_store
from hived.store import workspaces as store
from hived.store.db import Database
from hived.tasks.dispatcher import Dispatcher

PART = ".part"  # an artifact being received: renamed when its last chunk arrives


class AttemptFiles:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        state_dir: Path,
        limits: Limits,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.root = state_dir / "artifacts"
        self.limits = limits
        self.clock = clock

    async def resolve(self, ref: str) -> dict[str, Any]:
        def read(conn: Any) -> dict[str, Any] | None:
            try:
                return task_store.resolve_task(conn, ref)
            except task_store.AmbiguousPrefix:
                raise Conflict(f"task id prefix {ref!r} is ambiguous") from None

        row = await self.db.read(read)
        if row is None:
            raise NotFound(f"task {ref!r} not found")
        return row

    def _holds(self, agent_id: str, task_id: str, lease: int) -> bool:
        entry = self.dispatcher.in_flight.get(task_id)
        return entry is not None and entry.lease == lease and entry.agent_id == agent_id and not entry.ending

    # --- workspaces -------------------------------------------------------------------------------

    async def record(self, agent_id: str, results: list[AttemptResult]) -> int:
        """Store the workspace reports of results whose lease is current (before they end it)."""
        rows = []
        now = self.clock.now()
        for res in results:
            report = res.workspace
            if report is None or not self._holds(agent_id, res.task_id, res.lease):
                continue
            diff, size = report.diff, len(report.diff.encode("utf-8", "replace"))
            truncated = report.diff_truncated
            if size > self.limits.max_diff_bytes:
                diff = diff.encode("utf-8", "replace")[: self.limits.max_diff_bytes].decode("utf-8", "ignore")
                truncated = True
            fields = report.model_dump(exclude={"diff", "attempt"})
            fields["diff_truncated"] = truncated
            row = {"task_id": res.task_id, "attempt": res.attempt, "report": fields, "diff": diff}
            rows.append(row | {"diff_bytes": size, "created_at": now})
        if not rows:
            return 0
        return await self.db.write(lambda c: store.insert_new(c, rows))

    async def diff(self, ref: str, attempt: int | None) -> AttemptDiff:
        task = await self.resolve(ref)
        row = await self.db.read(lambda c: store.get(c, task["id"], attempt))
        if row is None:
            which = f"attempt {attempt}" if attempt is not None else "any attempt"
            raise NotFound(f"task {task['id']}: no workspace recorded for {which}")
        return AttemptDiff(
            task_id=row["task_id"],
            attempt=row["attempt"],
            diff=row["diff"],
            diff_bytes=row["diff_bytes"],
            created_at=row["created_at"],
            **row["report"],
        )

    # --- artifacts --------------------------------------------------------------------------------

    def _folder(self, task_id: str, attempt: int) -> Path:
        return self.root / task_id / str(attempt)

    def _path(self, task_id: str, attempt: int, name: str) -> Path:
        if (problem := artifact_name_problem(name)) is not None:
            raise Invalid(f"name: {problem}")
        folder = self._folder(task_id, attempt).resolve()
        path = (folder / name).resolve()
        if folder not in path.parents:
            raise Invalid(f"name: artifact name {name!r} leaves the attempt's folder")
        return path

    async def receive(self, agent_id: str, chunk: ArtifactChunk) -> Artifact:
        """One chunk of an artifact from the agent holding the attempt; the file appears whole, on
        its last chunk."""
        path = self._path(chunk.task_id, chunk.attempt, chunk.name)  # the name first: nothing written
        if not self._holds(agent_id, chunk.task_id, chunk.lease):
            raise Conflict(
                f"task {chunk.task_id}: artifact refused (this attempt's lease is no longer valid)"
            )
        try:
            data = base64.b64decode(chunk.data, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("data: not base64") from None
        part = path.with_name(path.name + PART)
        have = part.stat().st_size if chunk.offset and part.exists() else 0
        if chunk.offset != have:
            raise Invalid(f"offset: {chunk.offset} does not follow the {have} bytes received")
        size = have + len(data)
        if size > self.limits.max_artifact_bytes:
            part.unlink(missing_ok=True)
            raise TooLarge(
                f"artifact {chunk.name!r}: over max_artifact_bytes ({self.limits.max_artifact_bytes}):"
                " not kept"
            )
        used = self._used(chunk.task_id, chunk.attempt, skip=(path, part))
        if used + size > self.limits.max_attempt_artifacts_bytes:
            part.unlink(missing_ok=True)
            raise TooLarge(
                f"artifact {chunk.name!r}: the attempt's artifacts would pass max_attempt_artifacts_bytes "
                f"({self.limits.max_attempt_artifacts_bytes}): not kept"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        with part.open("ab" if chunk.offset else "wb") as handle:
            handle.write(data)
        if chunk.final:
            os.replace(part, path)
        return Artifact(attempt=chunk.attempt, name=chunk.name, size=size)

    def _used(self, task_id: str, attempt: int, skip: tuple[Path, ...]) -> int:
        folder = self._folder(task_id, attempt)
        total = 0
        for top, _dirs, files in os.walk(folder):
            for name in files:
                path = Path(top) / name
                if path.resolve() not in skip:
                    total += path.stat().st_size
        return total

    async def artifacts(self, ref: str, attempt: int | None = None) -> ArtifactList:
        task = await self.resolve(ref)
        items = []
        base = self.root / task["id"]
        attempts = sorted(int(p.name) for p in base.iterdir() if p.name.isdigit()) if base.is_dir() else []
        for number in attempts:
            if attempt is not None and number != attempt:
                continue
            folder = self._folder(task["id"], number)
            for top, _dirs, files in os.walk(folder):
                for name in sorted(files):
                    path = Path(top) / name
                    if not name.endswith(PART):
                        rel = path.relative_to(folder).as_posix()
                        items.append(Artifact(attempt=number, name=rel, size=path.stat().st_size))
        return ArtifactList(task_id=task["id"], items=items)

    async def artifact(self, ref: str, name: str, attempt: int | None = None) -> tuple[Path, Artifact]:
        """The file of an artifact: of `attempt`, else of the latest attempt that has it."""
        listing = await self.artifacts(ref, attempt)
        found = [a for a in listing.items if a.name == name]
        if not found:
            if (problem := artifact_name_problem(name)) is not None:
                raise Invalid(f"name: {problem}")
            raise NotFound(f"task {listing.task_id}: no artifact {name!r}")
        item = found[-1]
        return self._path(listing.task_id, item.attempt, name), item
