"""An Agent's `workspace:` as hived sees it: checked with the real `git` when the agent is applied
(a `git:` that is not a repository, a `base` it does not have: refused, nothing stored), and the
settings a spawned agent gets at registration (where its attempts' folders go, the size limits).
The worktrees themselves are hive-agent's (hivectl/agent/workspace.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hived.agents.quick import run_quick
from hived.bounds import Limits
from hived.errors import Invalid
from hived.model import paths
from hived.model.schemas import AgentSpec
from hived.model.workspaces import WorkspaceSpec

CHECK_TIMEOUT = 30.0  # a remote repository's answer (git ls-remote)


async def _git(*args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    done = await run_quick(["git", *args], env, CHECK_TIMEOUT)
    if done is None:
        return 1, f"no answer within {CHECK_TIMEOUT:g}s"
    code, out, err = done
    text = (err or out).strip().splitlines()
    return code, text[-1] if text else ""


async def check_workspace(spec: AgentSpec) -> None:
    """Invalid (naming `workspace.git` or `workspace.base`) unless the repository and its base exist."""
    if spec.workspace is None:
        return
    if spec.handler is not None and spec.handler.python is not None:
        raise Invalid("workspace: only an exec handler runs in a worktree (not a python handler)")
    problem = await workspace_problem(spec.workspace)
    if problem is not None:
        raise Invalid(problem)


async def workspace_problem(workspace: WorkspaceSpec) -> str | None:
    source, base = workspace.git, workspace.base
    local = Path(source).expanduser()
    if local.is_dir():
        code, _ = await _git("-C", str(local), "rev-parse", "--git-dir")
        if code:
            return f"workspace.git: {source} is not a git repository"
        code, _ = await _git("-C", str(local), "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
        if code:
            return f"workspace.base: {base!r} does not exist in {source}"
        return None
    if "://" not in source and not source.startswith("git@"):
        return f"workspace.git: {source} is not a git repository (no such folder, and not a URL)"
    code, message = await _git("ls-remote", "--exit-code", "--", source, base)
    if code == 2:
        return f"workspace.base: {base!r} does not exist in {source}"
    if code:
        return f"workspace.git: {source} is not a git repository git can reach ({message})"
    return None


def attempt_settings(agent: Any, state_dir: Path, limits: Limits) -> dict[str, Any]:
    """What a registering agent is told of its attempts' folders: its workspace (with the diff limit),
    where the folders go (its folder in the state dir) and the artifacts' limits."""
    spec: AgentSpec = agent.spec
    workspace = None
    if spec.workspace is not None:
        workspace = spec.workspace.model_dump() | {"max_diff_bytes": limits.max_diff_bytes}
    attempts = {
        "root": str(paths.agent_dir(state_dir, agent.name)),
        "max_artifact_bytes": limits.max_artifact_bytes,
        "max_attempt_artifacts_bytes": limits.max_attempt_artifacts_bytes,
    }
    return {"workspace": workspace, "attempts": attempts}


def attempt_folders(agent: Any, state_dir: Path) -> tuple[str, ...]:
    """What a container agent mounts besides its workdir: its attempts' folders (workspaces,
    artifacts; made now) and its workspace's repository when that is a local folder."""
    root = paths.agent_dir(state_dir, agent.name)
    folders = [root / "workspaces", root / "artifacts"]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    workspace = agent.spec.workspace
    if workspace is not None and Path(workspace.git).is_dir():
        folders.append(Path(workspace.git).resolve())
    return tuple(str(folder) for folder in folders)
