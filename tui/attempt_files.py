"""The task view's part for what attempts leave: the workspace (branch, commits, the diff's files)
and the artifacts (`GET /tasks/{id}/diff`, `GET /tasks/{id}/artifacts`). Nothing when there is none."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hivectl.client import AsyncClient, ClientError
from hivectl.client.routes import Call


async def load(client: AsyncClient, task_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The task's latest workspace report (None without one) and its artifacts."""
    try:
        diff = await client.send(Call("GET", f"/tasks/{task_id}/diff", _json))
    except ClientError:
        diff = None  # no workspace recorded (404)
    listing = await client.send(Call("GET", f"/tasks/{task_id}/artifacts", _json))
    return diff, listing.get("items", [])


def _json(resp: Any) -> Any:
    return resp.json()


def view(diff: dict[str, Any] | None, artifacts: list[dict[str, Any]]) -> RenderableType:
    parts: list[RenderableType] = []
    if diff is not None:
        files = [
            line[len("diff --git a/") :].split(" b/")[0]
            for line in diff["diff"].splitlines()
            if line.startswith("diff --git a/")
        ]
        commits = len(diff["commits"])
        head = f"branch {diff['branch']} (attempt {diff['attempt']}), {commits} commit(s) on {diff['base']}"
        parts += [Text(""), Text("workspace", style="bold"), Text(head)]
        parts += [Text(f"  {name}") for name in files] or [Text("  (no changes)")]
        if diff.get("worktree"):
            parts.append(Text(f"  kept at {diff['worktree']}"))
    if artifacts:
        table = Table("#", "SIZE", "NAME", box=None, header_style="bold")
        for item in artifacts:
            table.add_row(str(item["attempt"]), str(item["size"]), Text(item["name"]))
        parts += [Text(""), Text("artifacts", style="bold"), table]
    return Group(*parts)
