"""`hivectl daemon start|stop|status`: a background hived on this host (embedded SQLite by default).

The state dir, socket and database come from the same environment as hived's (`HIVE_STATE_DIR`,
`HIVE_SOCKET`, `HIVE_DB`); `start` records the pid in `<state_dir>/hived.pid` for `stop`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import psutil
import typer

from hivectl.cli import exitcodes, render
from hivectl.cli.common import CliError, OutputOpt, local_endpoint, options
from hivectl.cli.render import Output
from hivectl.client import Client, ClientError
from hivectl.endpoint import Endpoint
from hived.model import paths

app = typer.Typer(help="Start, stop and inspect a background hived on this host.", no_args_is_help=True)

START_DEADLINE = 20.0
LOG_TAIL_LINES = 20


def hived_pid(state: Path) -> int | None:
    """The pid in the pid file if that process is alive and is a hived (pids get reused)."""
    try:
        pid = int(paths.pid_file(state).read_text().strip())
        proc = psutil.Process(pid)
        alive = proc.status() != psutil.STATUS_ZOMBIE
        is_hived = any("hived" in part for part in proc.cmdline())
    except (OSError, ValueError, psutil.Error):
        return None
    return pid if alive and is_hived else None


def exited(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def health(endpoint: Endpoint) -> str | None:
    """hived's health status, or None if nothing answers."""
    try:
        with Client(endpoint, timeout=5.0) as cli:
            return cli.health().status
    except ClientError:
        return None


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@app.command()
def start(
    ctx: typer.Context,
    db: Annotated[
        str | None, typer.Option(help="database URL (default: SQLite hive.db in the state dir)")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Start hived in the background and wait until it serves (20 s at most)."""
    endpoint = local_endpoint(ctx)
    state = paths.state_dir()
    log_path = state / "hived.log"
    info: dict[str, Any] = {"endpoint": endpoint.describe(), "state_dir": str(state), "log": str(log_path)}
    running = health(endpoint) is not None
    if not running and (pid := hived_pid(state)) is not None:
        running = _wait_healthy(endpoint, pid)  # started a moment ago, by another `daemon start`
    if running:
        info |= {"status": "already running", "pid": hived_pid(state)}
        pid_text = f"pid {info['pid']}, " if info["pid"] else ""
        render.emit(info, output, lambda: f"hived is already running ({pid_text}{endpoint.describe()})")
        return
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    args = [sys.executable, "-m", "hived.main"]
    if db:
        args += ["--db", db]
    if options(ctx).socket:
        args += ["--socket", str(endpoint.socket)]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    paths.pid_file(state).write_text(f"{proc.pid}\n")
    if not _wait_healthy(endpoint, proc.pid, proc):
        if proc.poll() is not None:
            paths.pid_file(state).unlink(missing_ok=True)
            reason = f"hived exited with code {proc.returncode}"
        else:
            reason = f"hived (pid {proc.pid}) did not answer within {START_DEADLINE:g}s"
        if tail := log_tail(log_path):
            print(tail, file=sys.stderr)
        raise CliError(f"{reason} (log: {log_path})")
    info |= {"status": "started", "pid": proc.pid}
    render.emit(
        info, output, lambda: f"hived started (pid {proc.pid}, {endpoint.describe()}, log {log_path})"
    )


def _wait_healthy(endpoint: Endpoint, pid: int, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if health(endpoint):
            return True
        if (proc.poll() is not None) if proc is not None else exited(pid):
            return False
        time.sleep(0.1)
    return False


@app.command()
def stop(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="seconds to wait for hived to exit")] = 60.0,
    output: OutputOpt = Output.table,
) -> None:
    """Stop the background hived: SIGTERM (it stops its agents, then exits), then wait for it."""
    state = paths.state_dir()
    pid = hived_pid(state)
    if pid is None:
        paths.pid_file(state).unlink(missing_ok=True)  # stale
        if health(endpoint := local_endpoint(ctx)):
            raise CliError(
                f"hived answers at {endpoint.describe()} but was not started by `hivectl daemon start` "
                f"(no live pid in {paths.pid_file(state)}); stop it the way it was started"
            )
        render.emit({"status": "not running", "pid": None}, output, lambda: "hived is not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not exited(pid):
        if time.monotonic() > deadline:
            raise CliError(f"hived (pid {pid}) did not exit within {timeout:g}s")
        time.sleep(0.1)
    paths.pid_file(state).unlink(missing_ok=True)
    render.emit({"status": "stopped", "pid": pid}, output, lambda: f"hived stopped (pid {pid})")


@app.command()
def status(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Is hived up? Its pid, socket and health (exit 3 if it does not answer)."""
    endpoint = local_endpoint(ctx)
    state = paths.state_dir()
    info: dict[str, Any] = {
        "status": "not reachable",
        "pid": hived_pid(state),
        "endpoint": endpoint.describe(),
        "state_dir": str(state),
        "log": str(state / "hived.log"),
    }
    try:
        with Client(endpoint, timeout=5.0) as cli:
            info |= cli.health().model_dump(mode="json")
    except ClientError as exc:
        info["error"] = str(exc)
    render.emit(info, output, lambda: render.details_table(info))
    if "error" in info:
        raise typer.Exit(exitcodes.UNREACHABLE)
