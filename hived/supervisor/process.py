"""Starting, signalling and reaping agent processes. Each agent runs in its own process group so
that a stop reaches its handlers and their children too."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Exit:
    code: int | None
    signal: int | None

    def describe(self) -> str:
        if self.signal is not None:
            return f"killed by signal {self.signal} ({signal.Signals(self.signal).name})"
        return f"exited with code {self.code}"

    @property
    def clean(self) -> bool:
        return self.code == 0 and self.signal is None


async def spawn_agent(
    agent_id: str, incarnation: int, log_path: Path, env: dict[str, str], socket_path: Path | None
) -> asyncio.subprocess.Process:
    """Start `hive-agent` for one incarnation; stdout and stderr are appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    child_env = dict(os.environ)
    child_env.update(env)
    child_env.update({"HIVE_AGENT_ID": agent_id, "HIVE_AGENT_INCARNATION": str(incarnation)})
    if socket_path is not None:
        child_env["HIVE_SOCKET"] = str(socket_path)
        child_env.pop("HIVE_URL", None)
    with open(log_path, "ab", buffering=0) as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hivectl.agent.main",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=child_env,
            start_new_session=True,
        )


def exit_of(returncode: int) -> Exit:
    return Exit(code=None, signal=-returncode) if returncode < 0 else Exit(code=returncode, signal=None)


def signal_group(pid: int, sig: int) -> bool:
    """Send `sig` to the process group led by `pid`; False when it is already gone."""
    try:
        os.killpg(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


async def stop_process(proc: asyncio.subprocess.Process, grace: float) -> Exit:
    """SIGTERM to the group, `grace` seconds, then SIGKILL to the group."""
    if proc.returncode is None:
        signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace)
        except TimeoutError:
            signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
    # Handlers that outlived their agent (same group) get no second chance.
    with contextlib.suppress(Exception):
        signal_group(proc.pid, signal.SIGKILL)
    return exit_of(proc.returncode if proc.returncode is not None else 0)
