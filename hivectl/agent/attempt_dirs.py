"""The folders of one attempt around an exec handler: its workspace (a git worktree, `HIVE_WORKSPACE`,
hivectl/agent/workspace.py) and its artifacts folder (`HIVE_ARTIFACTS`), fresh for every attempt.

After the handler ends, the workspace's report (commits, diff) goes with the result, and the files in
the artifacts folder are uploaded to hived, fenced by the attempt's lease (`POST
/agents/{id}/artifacts`, base64 chunks), then the folder is removed. Only regular files are sent
(a symlink is skipped: it could point anywhere); a file over `max_artifact_bytes`, or past
`max_attempt_artifacts_bytes` for the attempt, is not kept, and the attempt's output says so.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hivectl.agent.connection import Connection
from hivectl.agent.exec_handler import ExecHandler
from hivectl.agent.handlers import ERROR, AttemptOutcome, Handler, StopRequest
from hivectl.agent.wire import Lease, RegisterResponse
from hivectl.agent.workspace import GitError, Workspaces

log = logging.getLogger("hive-agent")

CHUNK = 4 * 2**20  # raw bytes per upload request (base64 makes it ~5.6 MB, under max_request_bytes)
UPLOAD_DEADLINE = 60.0  # how long one chunk may wait for an unreachable hived
Post = Callable[[dict[str, Any]], Awaitable[Any]]  # one chunk to hived; raises with hived's message


@dataclasses.dataclass
class ArtifactLimits:
    max_file: int = 10 * 2**20
    max_attempt: int = 50 * 2**20

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArtifactLimits:
        return cls(
            int(data.get("max_artifact_bytes", cls.max_file)),
            int(data.get("max_attempt_artifacts_bytes", cls.max_attempt)),
        )


class AttemptDirs:
    """A handler that runs `inner` in the attempt's worktree with its artifacts folder."""

    def __init__(
        self,
        inner: Handler,
        root: Path,
        workspaces: Workspaces | None,
        limits: ArtifactLimits,
        post: Post | None,
    ) -> None:
        self.inner = inner
        self.root = root
        self.workspaces = workspaces
        self.limits = limits
        self.post = post

    async def send_input(self, task_id: str, text: str) -> bool:
        """Type a line into a `tty: true` attempt of the wrapped handler (hivectl.agent.tty_link)."""
        send = getattr(self.inner, "send_input", None)
        return send is not None and bool(await send(task_id, text))

    async def run(self, lease: Lease, stop: StopRequest) -> AttemptOutcome:
        env: dict[str, str] = {}
        slot = None
        if self.workspaces is not None:
            try:
                slot = await self.workspaces.open(
                    lease.task_id, lease.attempt, lease.env.get("HIVE_WORKSPACE_BRANCH")
                )
            except (GitError, OSError) as exc:
                return AttemptOutcome.failed(ERROR, f"workspace: {exc}")
            env |= {"HIVE_WORKSPACE": str(slot.path), "HIVE_WORKSPACE_BRANCH": slot.branch}
        folder = self.root / "artifacts" / f"{lease.task_id}-{lease.attempt}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        env["HIVE_ARTIFACTS"] = str(folder)
        try:
            outcome = await self.inner.run(dataclasses.replace(lease, env={**lease.env, **env}), stop)
        except Exception as exc:  # a bug: the attempt fails (the runtime says so); its worktree is closed
            outcome = AttemptOutcome.failed(ERROR, f"hive-agent: {type(exc).__name__}: {exc}")
        except BaseException:  # cancelled (the agent is stopping): the next start sweeps the worktree
            shutil.rmtree(folder, ignore_errors=True)
            raise
        notes = await self.upload(lease, folder)
        shutil.rmtree(folder, ignore_errors=True)
        if slot is not None and self.workspaces is not None:
            try:
                outcome.workspace = await self.workspaces.close(slot, outcome.ok)
            except (GitError, OSError) as exc:
                notes.append(f"workspace: {exc}")
        if notes:
            for note in notes:
                log.warning("task %s: %s", lease.task_id, note)
            outcome.output = (outcome.output or "") + "".join(f"\nhive-agent: {note}" for note in notes)
        return outcome

    async def upload(self, lease: Lease, folder: Path) -> list[str]:
        """Send the folder's files to hived; what could not be kept, as notes."""
        notes: list[str] = []
        total = 0
        for name, path in files_in(folder, notes):
            size = path.stat().st_size
            if size > self.limits.max_file:
                notes.append(
                    f"artifact {name}: {size} bytes, over max_artifact_bytes ({self.limits.max_file}):"
                    " not kept"
                )
                continue
            if total + size > self.limits.max_attempt:
                notes.append(
                    f"artifact {name}: over max_attempt_artifacts_bytes ({self.limits.max_attempt}) "
                    "for the attempt: not kept"
                )
                continue
            total += size
            if self.post is not None and (problem := await self._send(lease, name, path)):
                notes.append(f"artifact {name}: {problem}")
        return notes

    async def _send(self, lease: Lease, name: str, path: Path) -> str | None:
        assert self.post is not None
        offset = 0
        try:
            with path.open("rb") as handle:
                while True:
                    chunk = handle.read(CHUNK)
                    last = len(chunk) < CHUNK
                    body = {"task_id": lease.task_id, "attempt": lease.attempt, "lease": lease.lease}
                    body |= {
                        "name": name,
                        "offset": offset,
                        "final": last,
                        "data": base64.b64encode(chunk).decode(),
                    }
                    await self.post(body)
                    offset += len(chunk)
                    if last:
                        return None
        except OSError as exc:
            return exc.strerror or str(exc)
        except Exception as exc:  # refused by hived (over a limit, stale lease) or hived unreachable
            return str(exc) or type(exc).__name__


def files_in(folder: Path, notes: list[str]) -> list[tuple[str, Path]]:
    """The regular files below `folder` as (relative name, path), sorted; symlinks are skipped."""
    found: list[tuple[str, Path]] = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        for entry in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            path = Path(top) / entry
            name = path.relative_to(folder).as_posix()
            if path.is_symlink() or not path.is_file():
                notes.append(f"artifact {name}: not a regular file (a symlink?): not kept")
                continue
            found.append((name, path))
    return sorted(found)


def attempt_root(reply_root: str | None, name: str, external: bool) -> Path:
    """Where an agent keeps its attempts' folders: hived's choice for a spawned agent, the local
    state dir (HIVE_STATE_DIR or ~/.local/state/hive) for an external one."""
    if reply_root and not external:
        return Path(reply_root)
    state = os.environ.get("HIVE_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "hive"
    )
    return Path(state) / "agents" / name


async def wrap(
    inner: Handler,
    workspace: dict[str, Any] | None,
    artifacts: dict[str, Any] | None,
    root: Path,
    post: Post | None,
) -> Handler:
    """The handler of an exec agent with its attempts' folders; its left-over worktrees swept now."""
    workspaces = Workspaces.from_json(workspace, root / "workspaces") if workspace else None
    if workspaces is not None:
        started = time.monotonic()
        try:
            swept = await workspaces.sweep()
        except (GitError, OSError) as exc:  # each attempt will say what is wrong
            log.error("workspace %s: cannot sweep: %s", workspaces.git_source, exc)
            swept = []
        if swept:
            log.info(
                "swept %d worktree(s) left by a crash in %.2fs: %s",
                len(swept),
                time.monotonic() - started,
                ", ".join(swept),
            )
    return AttemptDirs(inner, root, workspaces, ArtifactLimits.from_json(artifacts or {}), post)


async def for_agent(
    handler: Handler, handler_spec: dict[str, Any], reply: RegisterResponse, conn: Connection, external: bool
) -> Handler:
    """An exec handler gets its attempts' folders (a python handler shares the agent's process and
    its working directory: it gets neither)."""
    if not handler_spec.get("exec"):
        return handler
    attempts = reply.attempts or {}
    root = attempt_root(attempts.get("root"), reply.agent.name, external)
    path = f"/agents/{reply.agent.id}/artifacts"

    async def post(body: dict[str, Any]) -> Any:
        body = {**body, "incarnation": reply.incarnation}
        return await conn.post(path, body, _any, deadline=time.monotonic() + UPLOAD_DEADLINE)

    if reply.workspace and isinstance(handler, ExecHandler):  # it runs in its worktree, not the workdir
        handler.argv = [in_workdir(arg, handler.workdir) for arg in handler.argv]
    return await wrap(handler, reply.workspace, attempts, root, post)


def in_workdir(arg: str, workdir: str) -> str:
    """An exec argument that is a relative path of a file in the agent's workdir, made absolute."""
    if arg.startswith("-") or os.path.isabs(arg) or not os.path.exists(os.path.join(workdir, arg)):
        return arg
    return os.path.abspath(os.path.join(workdir, arg))


def _any(value: Any) -> Any:
    return value
