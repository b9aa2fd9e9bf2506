"""Interactive tasks in the dashboard: the Queue pane lists the tasks waiting for input first, and
Enter on a running interactive task attaches to its terminal (the app is suspended while `tmux
attach` runs, and comes back when it ends or the user detaches with C-b d)."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from textual.app import App
from textual.widgets import DataTable

from hivectl.cli.common import CliError
from hivectl.cli.task_terminal import attach_argv
from hivectl.client import AsyncClient, ClientError
from hivectl.client.terminal_routes import TerminalRoutes

WAITING = "waiting_input"
INTERACTIVE = ("running", WAITING)


def waiting_first(table: DataTable[Any], tasks: dict[str, dict[str, Any]]) -> None:
    """Move the rows of tasks waiting for input to the top, the others in their order."""
    keys = [row.key.value for row in table.ordered_rows]
    ranks = [0 if tasks.get(key or "", {}).get("status") == WAITING else 1 for key in keys]
    if ranks != sorted(ranks):  # sorted already: nothing to move (sorting is stable)
        table.sort("status", key=lambda status: 0 if str(status) == WAITING else 1)


async def attach(app: App[Any], client: AsyncClient, task: dict[str, Any]) -> bool:
    """Attach to the task's terminal if it is a running interactive task; False when it is not one
    (the caller shows its details instead)."""
    if task.get("status") not in INTERACTIVE:
        return False
    try:
        term = await client.send(TerminalRoutes.terminal(task["id"]))
    except ClientError:  # not interactive (409), or gone meanwhile
        return False
    try:
        argv = attach_argv(term.host, term.socket, term.session, term.task_id)
    except CliError as exc:
        app.notify(exc.message, severity="error")
        return True
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    with app.suspend():  # blocking on purpose: nothing of the app may touch the terminal meanwhile
        code = subprocess.call(argv, env=env)  # noqa: ASYNC221
    if code != 0:
        app.notify(f"tmux attach ended with exit code {code}", severity="warning")
    return True
