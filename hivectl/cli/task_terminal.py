"""`hivectl task send|attach`: the terminal of a running `tty: true` task.

`send` types one line (then Enter) into the task's tmux session, through hived and the agent. `attach`
runs `tmux attach` on the agent's private tmux server: it works on the host where the agent runs (the
socket is a local file); detaching (the tmux key, C-b d) leaves the task running."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from typing import Annotated

import typer

from hivectl.cli.common import CliError, OutputOpt, client
from hivectl.cli.output import Output, emit
from hivectl.client.terminal_routes import TerminalRoutes

TextArg = Annotated[
    str, typer.Argument(help="one line to type (Enter is pressed after it)", show_default=False)
]
RefArg = Annotated[str, typer.Argument(help="task id or unique id prefix", metavar="REF", show_default=False)]


def send(
    ctx: typer.Context,
    ref: RefArg,
    text: TextArg,
    output: OutputOpt = Output.table,
) -> None:
    """Type a line into a running interactive task (`tty: true`), e.g. the answer to its prompt."""
    task = client(ctx).send(TerminalRoutes.send_input(ref, text))
    emit(task, output, lambda: f"task/{task.id}: sent {len(text)} character(s) and Enter")


def attach(
    ctx: typer.Context,
    ref: RefArg,
) -> None:
    """Attach this terminal to a running interactive task's tmux session (read-write).

    Detach with the tmux key (C-b d): the task keeps running. Run it on the host of the task's agent."""
    term = client(ctx).send(TerminalRoutes.terminal(ref))
    argv = attach_argv(term.host, term.socket, term.session, term.task_id)
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}  # also from inside another tmux
    code = subprocess.call(argv, env=env)
    if code != 0:
        raise CliError(f"task {term.task_id}: tmux attach ended with exit code {code}", code)


def attach_argv(host: str, sock: str, session: str, task_id: str) -> list[str]:
    """The `tmux attach` command for a session, or a CliError saying why it cannot run here."""
    here = socket.gethostname()
    if host != here:
        raise CliError(
            f"task {task_id} runs on host {host!r}, not here ({here!r}): run 'hivectl task attach "
            f"{task_id}' on {host}"
        )
    if not os.path.exists(sock):
        raise CliError(f"task {task_id}: its tmux socket {sock} is not on this machine (another container?)")
    if shutil.which("tmux") is None:
        raise CliError("tmux is not installed (not on PATH)")
    return ["tmux", "-S", sock, "attach-session", "-t", f"={session}"]


def register(app: typer.Typer) -> None:
    app.command()(send)
    app.command()(attach)
