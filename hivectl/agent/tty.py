"""`tty: true` exec handlers: the handler runs in a pseudo-terminal inside a tmux session.

Each agent has a private tmux server (its socket under the agent's state folder, never the user's
default server); each attempt is one session named `hive-<task id>`. tmux runs
`hivectl.agent.tty_shim`, which runs the handler on a terminal of its own and relays its output both
to the pane and, over a per-attempt unix socket, to this module: the attempt's output (log, result),
the stall timer and the prompt detection see every byte, and the exit status comes back the same way.
tmux is always run with an argv, never a shell string.

- `prompt_pattern` + `input_timeout`: output quiet for `input_timeout` whose last line matches the
  pattern means the handler waits for an answer: hived is told (`waiting_input`), and the timeout and
  stall timers are paused until output comes again.
- `send(task_id, text)` types a line into the session (`send-keys -l TEXT`, then Enter).
- A timeout, stall or cancel kills the handler's process group and the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from hivectl.agent import tty_shim
from hivectl.agent.handlers import AttemptOutcome, StopRequest
from hivectl.agent.tty_options import CURRENT, TerminalSink, TtyOptions
from hivectl.agent.tty_watch import TerminalWatch
from hivectl.agent.wire import Lease

CONNECT_TIMEOUT = 15.0  # how long the shim may take to start in its pane and connect
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes
SIZE = ("-x", "200", "-y", "50")


class TtyError(Exception):
    """tmux is missing, or a session could not be started or reached."""


def socket_path(state_dir: str | None = None) -> str:
    """The agent's private tmux socket: under its state folder (HIVE_AGENT_DIR, set by hived), else
    a private folder of the user's temporary directory."""
    base = state_dir or os.environ.get("HIVE_AGENT_DIR")
    if base:
        path = os.path.join(os.path.abspath(base), "tmux.sock")
        if len(path.encode()) <= SOCKET_PATH_MAX:
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                return path
            except OSError:
                pass  # not writable here (e.g. in a container): the temporary directory
    folder = os.path.join(tempfile.gettempdir(), f"hive-tty-{os.getuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return os.path.join(folder, f"agent-{os.getpid()}.sock")


def session_name(task_id: str) -> str:
    return f"hive-{task_id}"


def tmux_argv(sock: str, *args: str) -> list[str]:
    return ["tmux", "-S", sock, "-f", os.devnull, *args]


async def tmux(sock: str, *args: str) -> tuple[int, str]:
    """Run one tmux command on the agent's server: (exit code, what it printed)."""
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    proc = await asyncio.create_subprocess_exec(
        *tmux_argv(sock, *args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace").strip()


class TtyRunner:
    """The tmux side of one agent's `tty: true` handler."""

    def __init__(self, options: TtyOptions, sock: str | None = None) -> None:
        if shutil.which("tmux") is None:
            raise TtyError("tty: true needs tmux, which is not installed (not on PATH)")
        self.options = options
        self.sock = sock or socket_path()
        self.sessions: dict[str, str] = {}  # task id -> session name
        self.swept = False

    async def sweep(self) -> None:
        """Sessions an earlier life of this agent left (it was killed): their handlers are orphans."""
        if not self.swept:
            self.swept = True
            await tmux(self.sock, "kill-server")

    async def send(self, task_id: str, text: str) -> bool:
        """Type `text` and Enter into the task's session; False when it has none here."""
        name = self.sessions.get(task_id)
        if name is None:
            return False
        code, _ = await tmux(self.sock, "send-keys", "-t", f"={name}:", "-l", "--", text)
        if code == 0:
            code, _ = await tmux(self.sock, "send-keys", "-t", f"={name}:", "Enter")
        return code == 0

    async def run(
        self,
        argv: list[str],
        cwd: str,
        env: dict[str, str],
        lease: Lease,
        stop: StopRequest,
        grace: float,
        started: Callable[[int], None] = lambda _pid: None,
    ) -> AttemptOutcome:
        """Run one attempt in a new session. `started` is given the tmux server's pid: the server is
        a descendant of the agent (a subreaper), and its tree must survive the sweep that follows
        another attempt's end."""
        await self.sweep()
        name = session_name(lease.task_id)
        address = f"hive-tty-{os.getpid()}-{secrets.token_hex(8)}"
        connected: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        server = await asyncio.start_unix_server(
            lambda r, w: connected.put_nowait((r, w)), path="\0" + address
        )
        payload_file = _payload_file(lease.payload)
        shim = [sys.executable, "-m", tty_shim.__name__, address]
        try:
            new = ("new-session", "-d", "-P", "-F", "#{pid}", "-s", name, *SIZE, *shim)
            code, out = await tmux(self.sock, *new)
            if code != 0 or not out.isdigit():
                return AttemptOutcome.failed("error", f"tty: tmux new-session failed: {out[:300]}")
            started(int(out))
            self.sessions[lease.task_id] = name
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    reader, writer = await connected.get()
            except TimeoutError:
                return AttemptOutcome.failed("error", "tty: the terminal session did not start")
            start = {"argv": argv, "cwd": cwd, "env": {**env, "HIVE_PAYLOAD": payload_file}}
            writer.write(tty_shim.frame(b"S", json.dumps(start).encode()))
            sink = _where(CURRENT.get() or _ignore, self.sock, name)
            sink("started", {})
            watch = TerminalWatch(reader, lease, stop, self.options, sink, grace, self._kill(name))
            try:
                return await watch.run()
            finally:
                writer.close()
        finally:
            self.sessions.pop(lease.task_id, None)
            server.close()
            await tmux(self.sock, "kill-session", "-t", f"={name}")
            with contextlib.suppress(OSError):
                os.unlink(payload_file)

    def _kill(self, name: str) -> Callable[[int | None, int], Any]:
        async def kill(pid: int | None, sig: int) -> None:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, sig)
            if sig == signal.SIGKILL:
                await tmux(self.sock, "kill-session", "-t", f"={name}")

        return kill


def _payload_file(payload: dict[str, Any]) -> str:
    """The payload, as a JSON file only this user reads (`$HIVE_PAYLOAD`): stdin is the terminal."""
    fd, path = tempfile.mkstemp(prefix="hive-payload-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f)
    return path


def _where(sink: TerminalSink, sock: str, session: str) -> TerminalSink:
    """Every report says where the session is: a hived restarted meanwhile learns it again."""
    where = {"socket": sock, "session": session, "host": socket.gethostname()}
    return lambda event, details: sink(event, {**where, **details})


def _ignore(_event: str, _details: dict[str, Any]) -> None:
    pass
