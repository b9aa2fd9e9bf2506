"""`hivectl daemon start|stop|status`: a background hived on the embedded default."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Annotated

import typer

from hivectl.cli.common import OutputOpt, client, fail
from hivectl.cli.render import Output, details
from hivectl.client import ClientError
from hived import paths

app = typer.Typer(help="Start, stop and inspect a background hived.", no_args_is_help=True)


def _running_pid() -> int | None:
    pid_path = paths.pid_file(paths.state_dir())
    try:
        pid = int(pid_path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


@app.command()
def start(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option(help="database URL (default: SQLite in the state dir)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for hived to serve")] = 30.0,
) -> None:
    """Start hived in the background (state dir, socket and database from the environment)."""
    cli = client(ctx)
    try:
        cli.health()
        typer.echo(f"hived is already running ({cli.endpoint.describe()})")
        return
    except ClientError:
        pass
    state = paths.state_dir()
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    args = [sys.executable, "-m", "hived.main"]
    if db:
        args += ["--db", db]
    if ctx.find_root().obj.get("socket"):
        args += ["--socket", ctx.find_root().obj["socket"]]
    log_path = state / "hived.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    paths.pid_file(state).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            cli.health()
            typer.echo(f"hived started (pid {proc.pid}, {cli.endpoint.describe()}, log {log_path})")
            return
        except ClientError:
            time.sleep(0.1)
    tail = log_path.read_text(errors="replace").splitlines()[-15:]
    typer.echo("\n".join(tail), err=True)
    raise fail(f"hived did not come up (see {log_path})")


@app.command()
def stop(timeout: Annotated[float, typer.Option(help="seconds to wait for it to exit")] = 60.0) -> None:
    """Stop the background hived (SIGTERM: it stops its agents, then exits)."""
    pid = _running_pid()
    if pid is None:
        typer.echo("hived is not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    else:
        raise fail(f"hived (pid {pid}) did not exit within {timeout:g}s")
    paths.pid_file(paths.state_dir()).unlink(missing_ok=True)
    typer.echo(f"hived stopped (pid {pid})")


@app.command()
def status(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Is hived up? Its pid, socket and version."""
    cli = client(ctx)
    info = {"pid": _running_pid(), "endpoint": cli.endpoint.describe(), "state_dir": str(paths.state_dir())}
    try:
        info.update(cli.health())
    except ClientError as exc:
        info["status"] = f"not reachable: {exc}"
        details(info, output)
        raise typer.Exit(3) from None
    details(info, output)
