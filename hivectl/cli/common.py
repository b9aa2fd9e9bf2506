"""What every hivectl command shares: the global options, the client built from them, the -o option,
and `CliError`, the one way a command fails (app.py turns it into `error: ...` and an exit code)."""

from __future__ import annotations

import gc
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hivectl.cli import exitcodes
from hivectl.cli.output import Output
from hivectl.client import format_errors
from hivectl.endpoint import Endpoint
from hived.model import paths

if TYPE_CHECKING:
    from pydantic import ValidationError

    from hivectl.client import Client

OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="table (for people), json or yaml (for scripts)")
]


class CliError(Exception):
    """A failure to report on one line, with its exit code."""

    def __init__(self, message: str, code: int = exitcodes.FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def usage_error(message: str) -> CliError:
    return CliError(message, exitcodes.USAGE)


@dataclass
class GlobalOptions:
    socket: str | None = None
    url: str | None = None
    token: str | None = None
    client: Client | None = None


def options(ctx: typer.Context) -> GlobalOptions:
    root = ctx.find_root()
    if not isinstance(root.obj, GlobalOptions):
        root.obj = GlobalOptions()
    return root.obj


def started() -> None:
    """The command has started its work: the garbage collector, off while hivectl starts (see
    main.py), is on from here, for commands that follow a task or a run, or the dashboard. What
    start-up made (modules, classes: nearly all of it lives until the exit) is frozen first, so
    that no collection walks it."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def endpoint(ctx: typer.Context, start: bool = True) -> Endpoint:
    opts = options(ctx)
    if start:
        started()
    return Endpoint.from_env(socket=opts.socket, url=opts.url, token=opts.token)


def local_endpoint(ctx: typer.Context) -> Endpoint:
    """The socket of the hived on this host (for `daemon ...`), whatever HIVE_URL says."""
    socket = options(ctx).socket
    started()
    return Endpoint(socket=Path(socket) if socket else paths.socket_path(), token=options(ctx).token)


def client(ctx: typer.Context) -> Client:
    """The client for this invocation, closed when the command ends."""
    opts = options(ctx)
    if opts.client is None:
        from hivectl.client import Client  # httpx: imported by the commands that reach hived

        opts.client = Client(endpoint(ctx, start=False), notice=notice)
        ctx.find_root().call_on_close(opts.client.close)
        started()
    return opts.client


def notice(message: str) -> None:
    """A note on stderr while a command goes on (a wait riding out a restart of hived)."""
    print(f"hivectl: {message}", file=sys.stderr, flush=True)


def flag_error(exc: ValidationError, flags: dict[str, str]) -> CliError:
    """A value the API schema refuses, named by the flag the user typed. Checked here so that nothing
    is sent; the exit code is the one hived's own refusal (422) would give."""
    return CliError(format_errors(exc.errors()[:1], flags, unnamed="value"))
