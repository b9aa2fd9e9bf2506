"""Workspaces and artifacts (DESIGN: "Workspaces, artifacts and interactive agents"): the Agent's
`workspace:` field, what an agent reports of an attempt's worktree, artifacts as the API shows them,
and the rules on artifact names. Pure: the git work is hive-agent's (hivectl/agent/workspace.py)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from hived.model.fields import Strict, Text

# A branch name git accepts and a command line cannot mistake for an option (a subset of
# `git check-ref-format --branch`: no '..', no '@{', no trailing '.lock' or '/').
REF_RE = re.compile(r"^(?!-)(?!.*\.\.)(?!.*@\{)(?!.*//)[A-Za-z0-9._/@+-]{1,200}(?<![./])(?<!\.lock)$")
MAX_NAME_CHARS = 255
AFFINITY_CAPABILITY = "hive/agent:"  # every agent has `hive/agent:<its id>`: a step's affinity requires it
AFFINITY_OPTION = "workspace_of"  # a task's option: the task whose workspace branch it continues on
WORKSPACE_LABEL = "hive/workspace-of"  # the label that sets it (a step's affinity, or by hand)


class WorkspaceSpec(Strict):
    """`workspace:` of an Agent: every attempt of an exec handler runs in a fresh git worktree."""

    git: Text = Field(min_length=1, max_length=4096, description="a local repository or a URL git can clone")
    base: str = Field(default="main", description="the branch (or ref) each attempt starts from")
    keep: Literal["on_failure", "always", "never"] = "on_failure"
    max_kept: int = Field(
        default=10, ge=0, le=10_000, description="kept worktrees per agent; oldest go first"
    )

    @field_validator("base")
    @classmethod
    def _base(cls, value: str) -> str:
        if not REF_RE.match(value):
            raise ValueError(f"{value!r} is not a branch or ref name")
        return value

    @field_validator("git")
    @classmethod
    def _git(cls, value: str) -> str:
        if value.startswith("-"):
            raise ValueError("must be a path or a URL, not an option")
        return value


class Commit(BaseModel):
    sha: str
    subject: str = ""


class WorkspaceReport(BaseModel):
    """What hive-agent reports of an attempt's worktree (with the result)."""

    branch: str = Field(max_length=300)
    base: str = Field(max_length=300)
    attempt: int
    base_commit: str | None = Field(default=None, max_length=64)
    head: str | None = Field(default=None, max_length=64)
    commits: list[Commit] = Field(default_factory=list, max_length=1000)
    diff: str = ""
    diff_truncated: bool = False
    worktree: str | None = Field(default=None, max_length=4096, description="kept here (keep)")
    branch_kept: bool = True
    error: str | None = None


class AttemptDiff(WorkspaceReport):
    """`GET /tasks/{id}/diff`: an attempt's workspace, its commits and `git diff base...branch`."""

    task_id: str
    diff_bytes: int = 0
    created_at: datetime | None = None


class Artifact(BaseModel):
    attempt: int
    name: str
    size: int


class ArtifactList(BaseModel):
    task_id: str
    items: list[Artifact]


class ArtifactChunk(Strict):
    """`POST /agents/{id}/artifacts`: part of one artifact file, fenced by the attempt's lease."""

    incarnation: int
    task_id: str = Field(max_length=36)
    attempt: int = Field(ge=1)
    lease: int
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    offset: int = Field(ge=0)
    final: bool = True
    data: str = Field(description="base64")


def artifact_name_problem(name: str) -> str | None:
    """Why `name` cannot name an artifact (a relative path below the attempt's folder), or None."""
    if not name or len(name) > MAX_NAME_CHARS:
        return f"artifact name must be 1-{MAX_NAME_CHARS} characters"
    if name.startswith("/") or name.startswith("\\") or re.match(r"^[A-Za-z]:", name):
        return f"artifact name {name!r}: an absolute path is not allowed"
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return f"artifact name {name!r}: '..', '.' and empty path parts are not allowed"
    if any(ord(ch) < 32 or ch in "\\\x7f" for ch in name):
        return f"artifact name {name!r}: control characters and '\\' are not allowed"
    return None


def workspace_env(options: dict[str, Any]) -> dict[str, str]:
    """The lease's env for a task that continues another task's workspace branch (affinity)."""
    source = options.get(AFFINITY_OPTION)
    return {"HIVE_WORKSPACE_BRANCH": f"hive/{source}"} if source else {}
