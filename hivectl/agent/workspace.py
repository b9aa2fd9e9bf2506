"""Workspaces: a fresh `git worktree` per attempt (the Agent's `workspace:`), with the real `git` CLI.

Layout, under the agent's folder (`<state>/agents/<name>/workspaces/`): `worktrees/<task>-<attempt>`
(one per attempt, never reused) and `kept/<task>-<attempt>` (a marker: that worktree is kept on
purpose). A `git:` that is a local folder is used as is (its worktrees and `hive/*` branches appear in
it); a URL is cloned once, bare, to `origin.git` and its `base` fetched before every attempt.

Branches: an attempt works on `hive/<task-id>`, made from `base`. After a failed attempt with changes
that branch is renamed `hive/<task-id>-attempt-<N>`, so a retry starts from `base` again on
`hive/<task-id>` and the branch that ends a task always has the main name. A step with `affinity:`
continues on the branch of that step (HIVE_WORKSPACE_BRANCH in the lease's env) instead.

After an attempt, what the handler left uncommitted is committed by hive (author `hive`), then the
report is made: the commits and `git diff <base>...<branch>` (the first `max_diff_bytes`). The
worktree is removed unless `keep` asks (always, or on_failure after a failure); a branch without
commits is deleted. Worktrees a crash left behind are removed by `sweep()` when the agent starts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hivectl.agent import containment

IDENTITY = ("-c", "user.name=hive", "-c", "user.email=hive@localhost", "-c", "commit.gpgsign=false")
MAX_COMMITS = 1000  # listed in a report
DIFF_BYTES = 2**20  # the default of hived's max_diff_bytes


class GitError(Exception):
    pass


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # no inherited GIT_DIR
    quiet = {  # no background gc or maintenance left running after hive's own commands
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "gc.auto",
        "GIT_CONFIG_VALUE_0": "0",
        "GIT_CONFIG_KEY_1": "maintenance.auto",
        "GIT_CONFIG_VALUE_1": "false",
    }
    own = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", containment.MARK: containment.AGENT_OWN}
    return {**env, **quiet, **own}


async def git(*args: str, cwd: str | Path, limit: int | None = None) -> str:
    """Run `git ARGS` (argv, never a shell) in `cwd`; its stdout. Raises GitError with git's message.
    With `limit`, at most that many bytes of stdout are read (the rest is dropped)."""
    async with containment.SPAWNING:  # an attempt's sweep must not take it for a left-over process
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=str(cwd),
            env=git_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        containment.HELPERS.add(proc.pid)
    try:
        return await _output(proc, args, limit)
    finally:
        containment.HELPERS.discard(proc.pid)


async def _output(proc: asyncio.subprocess.Process, args: tuple[str, ...], limit: int | None) -> str:
    if limit is None:
        out, err = await proc.communicate()
    else:
        assert proc.stdout is not None and proc.stderr is not None
        out = await proc.stdout.read(limit + 1)
        if len(out) > limit:
            proc.kill()
        err = await proc.stderr.read()
        await proc.wait()
        if len(out) > limit:
            return out.decode("utf-8", "replace")
    if proc.returncode:
        message = err.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]}: {message[-1] if message else f'exit code {proc.returncode}'}")
    return out.decode("utf-8", "replace")


async def has_ref(repo: str | Path, ref: str) -> bool:
    try:
        await git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo)
    except GitError:
        return False
    return True


@dataclass
class Slot:
    """One attempt's worktree."""

    task_id: str
    attempt: int
    path: Path
    branch: str
    own: bool  # on this task's branch (not continuing another step's: affinity)


@dataclass
class Workspaces:
    git_source: str
    base: str
    keep: str  # on_failure | always | never
    max_kept: int
    root: Path
    max_diff_bytes: int = DIFF_BYTES

    def __post_init__(self) -> None:
        self.lock = asyncio.Lock()  # worktree and branch changes of one repository, one at a time
        local = Path(self.git_source).expanduser()
        self.repo = local if local.is_dir() else self.root / "origin.git"
        self.remote = not local.is_dir()

    @classmethod
    def from_json(cls, data: dict[str, Any], root: Path) -> Workspaces:
        return cls(
            git_source=str(data["git"]),
            base=str(data.get("base") or "main"),
            keep=str(data.get("keep") or "on_failure"),
            max_kept=int(data.get("max_kept") or 10),
            root=root,
            max_diff_bytes=int(data.get("max_diff_bytes") or DIFF_BYTES),
        )

    @property
    def worktrees(self) -> Path:
        return self.root / "worktrees"

    @property
    def kept(self) -> Path:
        return self.root / "kept"

    async def _fetch(self) -> None:
        if not self.remote:
            return
        if not (self.repo / "HEAD").exists():
            self.root.mkdir(parents=True, exist_ok=True)
            await git("clone", "--bare", "--quiet", self.git_source, str(self.repo), cwd=self.root)
        refspec = f"+refs/heads/{self.base}:refs/heads/{self.base}"
        await git("fetch", "--quiet", "origin", refspec, cwd=self.repo)

    async def open(self, task_id: str, attempt: int, branch_from: str | None = None) -> Slot:
        """A new worktree for this attempt (a left-over one of the same name is removed first)."""
        path = self.worktrees / f"{task_id}-{attempt}"
        async with self.lock:
            await self._fetch()
            if path.exists():
                await self._remove(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            if branch_from and await has_ref(self.repo, f"refs/heads/{branch_from}"):
                await git("worktree", "add", "--force", "--quiet", str(path), branch_from, cwd=self.repo)
                return Slot(task_id, attempt, path, branch_from, own=False)
            branch = f"hive/{task_id}"
            if await has_ref(self.repo, f"refs/heads/{branch}"):  # an earlier attempt that did not close
                await self._retire(branch, attempt - 1)
            await git("worktree", "add", "--quiet", "-b", branch, str(path), self.base, cwd=self.repo)
        return Slot(task_id, attempt, path, branch, own=True)

    async def close(self, slot: Slot, ok: bool) -> dict[str, Any]:
        """Commit what is left, report the commits and the diff, then keep or remove the worktree."""
        report: dict[str, Any] = {"branch": slot.branch, "base": self.base, "attempt": slot.attempt}
        try:
            report |= await self._commit_and_diff(slot)
        except GitError as exc:
            report["error"] = str(exc)
        changed = bool(report.get("commits"))
        keep = self.keep == "always" or (self.keep == "on_failure" and not ok)
        async with self.lock:
            if slot.own and changed and not ok:
                report["branch"] = await self._retire(slot.branch, slot.attempt)
            if keep:
                self.kept.mkdir(parents=True, exist_ok=True)
                (self.kept / slot.path.name).write_text(str(slot.path) + "\n")
                report["worktree"] = str(slot.path)
                await self._cap()
            else:
                await self._remove(slot.path)
            if slot.own and not changed and not keep:
                await self._delete_branch(slot.branch)
        report["branch_kept"] = changed or keep or not slot.own
        return report

    async def _commit_and_diff(self, slot: Slot) -> dict[str, Any]:
        cwd = slot.path
        if (await git("status", "--porcelain", cwd=cwd)).strip():
            await git("add", "-A", cwd=cwd)
            message = f"hive: uncommitted changes of task {slot.task_id}, attempt {slot.attempt}"
            await git(*IDENTITY, "commit", "--quiet", "--no-verify", "-m", message, cwd=cwd)
        head = (await git("rev-parse", "HEAD", cwd=cwd)).strip()
        base_commit = (await git("merge-base", self.base, "HEAD", cwd=cwd)).strip()
        log = await git(
            "log", f"--max-count={MAX_COMMITS}", "--format=%H%x1f%s", f"{self.base}..HEAD", cwd=cwd
        )
        commits = [
            dict(zip(("sha", "subject"), line.split("\x1f", 1), strict=False)) for line in log.splitlines()
        ]
        diff = await git("diff", f"{self.base}...HEAD", cwd=cwd, limit=self.max_diff_bytes)
        data = diff.encode("utf-8", "replace")
        truncated = len(data) > self.max_diff_bytes
        if truncated:
            diff = data[: self.max_diff_bytes].decode("utf-8", "ignore")
        return {
            "base_commit": base_commit,
            "head": head,
            "commits": commits,
            "diff": diff,
            "diff_truncated": truncated,
        }

    async def _retire(self, branch: str, attempt: int) -> str:
        """Move a failed attempt's branch aside (`<branch>-attempt-N`); without commits, delete it."""
        if not (await git("rev-list", "--max-count=1", f"{self.base}..{branch}", cwd=self.repo)).strip():
            if await self._delete_branch(branch):
                return branch
        new = f"{branch}-attempt-{attempt}"
        if await has_ref(self.repo, f"refs/heads/{new}"):
            new = f"{new}-{time.time_ns()}"
        await git("branch", "-m", branch, new, cwd=self.repo)
        return new

    async def _delete_branch(self, branch: str) -> bool:
        try:
            await git("branch", "-D", "--quiet", branch, cwd=self.repo)
        except GitError:
            return False  # checked out in a kept worktree
        return True

    async def _remove(self, path: Path) -> None:
        try:
            await git("worktree", "remove", "--force", "--force", str(path), cwd=self.repo)
        except GitError:
            pass  # not a registered worktree (any more): the folder goes below, prune forgets it
        shutil.rmtree(path, ignore_errors=True)
        (self.kept / path.name).unlink(missing_ok=True)
        await git("worktree", "prune", cwd=self.repo)

    async def _cap(self) -> None:
        """At most `max_kept` kept worktrees: the oldest go first."""
        markers = sorted(self.kept.iterdir(), key=lambda p: p.stat().st_mtime)
        for marker in markers[: max(0, len(markers) - self.max_kept)]:
            await self._remove(self.worktrees / marker.name)

    async def sweep(self) -> list[str]:
        """At start: remove the worktrees no `keep` asked for (a crash left them), and their branches
        when they have no commits (else a branch is renamed like a failed attempt's). Returns them."""
        swept: list[str] = []
        if self.remote and not (self.repo / "HEAD").exists():
            return swept
        async with self.lock:
            for marker in list(self.kept.iterdir()) if self.kept.is_dir() else []:
                if not (self.worktrees / marker.name).exists():
                    marker.unlink(missing_ok=True)
            for path in sorted(self.worktrees.iterdir()) if self.worktrees.is_dir() else []:
                if (self.kept / path.name).exists():
                    continue
                task_id, _, attempt = path.name.rpartition("-")
                await self._remove(path)
                swept.append(path.name)
                branch = f"hive/{task_id}"
                if attempt.isdigit() and await has_ref(self.repo, f"refs/heads/{branch}"):
                    await self._retire(branch, int(attempt))
            await git("worktree", "prune", cwd=self.repo)
        return swept
