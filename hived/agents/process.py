"""Starting, signalling and reaping agent processes. Each agent runs in its own process group; its
exec handlers run in sessions of their own, which the agent contains while it lives
(`hivectl/agent/containment.py`). When an agent incarnation has died, `kill_leftovers` kills what it
left: every process whose environment still names that agent and incarnation.

An agent does not inherit hived's environment, which holds hived's own secrets (HIVE_DB with its
password, HIVE_TOKEN, whatever the service manager set): only the names in AGENT_ENV_NAMES and
AGENT_ENV_PREFIXES are passed on, plus what hived sets for the agent. The agent's own `env` comes in its
registration reply (see hivectl/agent/main.py).

`Processes` is the port the agent manager and the health monitor use for all of it; `OsProcesses`
is the real one (`hived.agents.podman.HostProcesses` adds container agents to it),
`hived.agents.testing.FakeProcesses` an in-memory one for in-process tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hived.agents.container import Launch

log = logging.getLogger("hived.agents")


@dataclass
class Exit:
    code: int | None
    signal: int | None

    def describe(self) -> str:
        if self.code is None and self.signal is None:
            return "exited (exit status unknown: adopted after a hived restart)"
        if self.signal is not None:
            return f"killed by signal {self.signal} ({signal.Signals(self.signal).name})"
        return f"exited with code {self.code}"

    @property
    def clean(self) -> bool:
        return self.code == 0 and self.signal is None


# What an agent (and its handlers) may inherit from hived's environment: the basics of a process, no
# credentials. README, Security.
AGENT_ENV_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
        "PYTHONIOENCODING", "PYTHONUTF8",
    }
)  # fmt: skip
AGENT_ENV_PREFIXES = ("LC_", "COVERAGE_")  # locale; a coverage run measuring the agents too


class NotStarted:
    """An incarnation that could not start (a container agent whose podman or image is missing): no
    process; it ends at once, unclean, and `failure` is its reason (see `describe_end`)."""

    pid = 0
    returncode = 127

    def __init__(self, failure: str) -> None:
        self.failure = failure

    async def wait(self) -> int | None:
        return self.returncode


def describe_end(proc: AgentProcess, outcome: Exit) -> str:
    """How an incarnation ended, for its record and the agent's status reason."""
    return proc.failure if isinstance(proc, NotStarted) else outcome.describe()


def agent_environment(
    environ: dict[str, str], env: dict[str, str], agent_id: str, incarnation: int, socket_path: Path | None
) -> dict[str, str]:
    """The environment of `hive-agent`: the allowed part of hived's `environ`, then `env` (what hived
    sets, e.g. HIVE_AGENT_LOG_MAX_BYTES), the agent's id and incarnation, and how to reach hived."""
    child = {k: v for k, v in environ.items() if k in AGENT_ENV_NAMES or k.startswith(AGENT_ENV_PREFIXES)}
    child.update(env)
    child.update({"HIVE_AGENT_ID": agent_id, "HIVE_AGENT_INCARNATION": str(incarnation)})
    if socket_path is not None:
        child["HIVE_SOCKET"] = str(socket_path)
    elif "HIVE_URL" in environ:  # no socket (tests of the manager alone): hived's URL, not its token
        child["HIVE_URL"] = environ["HIVE_URL"]
    return child


async def spawn_agent(
    agent_id: str, incarnation: int, log_path: Path, env: dict[str, str], socket_path: Path | None
) -> asyncio.subprocess.Process:
    """Start `hive-agent` for one incarnation; stdout and stderr are appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    child_env = agent_environment(dict(os.environ), env, agent_id, incarnation, socket_path)
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


async def stop_process(proc: AgentProcess, grace: float) -> Exit:
    """SIGTERM to the group, `grace` seconds, then SIGKILL to the group. An adopted process's exit
    status cannot be known (it is not our child)."""
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
    return exit_of(proc.returncode) if proc.returncode is not None else Exit(None, None)


def kill_leftovers(agent_id: str, incarnation: int) -> list[int]:
    """SIGKILL every process (of this user) started by that incarnation of the agent: handlers and
    their descendants inherit HIVE_AGENT_ID and HIVE_AGENT_INCARNATION. Blocking: it reads the
    environment of every process; call it off the event loop. Returns the pids killed."""
    import psutil

    wanted = {"HIVE_AGENT_ID": agent_id, "HIVE_AGENT_INCARNATION": str(incarnation)}
    killed = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            env = proc.environ()
            if all(env.get(key) == value for key, value in wanted.items()):
                proc.kill()
                killed.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return killed


async def sweep_incarnation(agent_id: str, name: str, incarnation: int) -> None:
    """After an agent incarnation ended: kill what its handlers left (see `kill_leftovers`)."""
    started = time.monotonic()
    try:
        killed = await asyncio.to_thread(kill_leftovers, agent_id, incarnation)
    except Exception:
        log.exception("agent %s: could not sweep the processes of incarnation %d", name, incarnation)
        return
    if killed:
        log.warning(
            "agent %s: killed %d process(es) left by incarnation %d (%.2fs): pids %s",
            name,
            len(killed),
            incarnation,
            time.monotonic() - started,
            ", ".join(map(str, killed[:20])),
        )


class AdoptedProcess:
    """An agent process of an earlier hived run: not our child, so we watch it through a pidfd and
    cannot learn its exit status."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = asyncio.Event()
        self._fd: int | None = None

    def watch(self) -> None:
        try:
            self._fd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            self._exited.set()
            return
        asyncio.get_running_loop().add_reader(self._fd, self._on_exit)

    def _on_exit(self) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
        self._exited.set()

    async def wait(self) -> int | None:
        await self._exited.wait()
        return None


class AgentProcess(Protocol):
    """A running agent incarnation: its pid, its exit (`wait`), and its return code once known."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int | None: ...


class Processes(Protocol):
    """What supervision does to agent processes: start, adopt after a hived restart, stop, kill."""

    async def spawn(
        self, agent_id: str, incarnation: int, log_path: Path, env: dict[str, str], socket_path: Path | None,
        launch: Launch | None = None,
    ) -> AgentProcess:
        """Start one incarnation of the agent (`hive-agent`), in a container when `launch` says so."""
        ...

    def adopt(self, pid: int, agent_id: str, incarnation: int) -> AgentProcess | None:
        """The process of an earlier hived run, watched, if `pid` is still that incarnation."""
        ...

    async def stop(self, proc: AgentProcess, grace: float) -> Exit:
        """SIGTERM, `grace` seconds, then SIGKILL, to the process and its group."""
        ...

    def kill(self, proc: AgentProcess) -> None:
        """SIGKILL to the process and its group, now (its watcher sees the exit)."""
        ...

    async def sweep(self, agent_id: str, name: str, incarnation: int) -> None:
        """After an incarnation ended: kill what its handlers left behind."""
        ...


class OsProcesses:
    """Real processes of this host."""

    async def spawn(
        self, agent_id: str, incarnation: int, log_path: Path, env: dict[str, str], socket_path: Path | None,
        launch: Launch | None = None,
    ) -> AgentProcess:
        assert launch is None, "a container agent: hived.agents.podman.HostProcesses starts those"
        return await spawn_agent(agent_id, incarnation, log_path, env, socket_path)

    def adopt(self, pid: int, agent_id: str, incarnation: int) -> AgentProcess | None:
        if not find_agent_process(pid, agent_id, incarnation):
            return None
        proc = AdoptedProcess(pid)
        proc.watch()
        return proc

    async def stop(self, proc: AgentProcess, grace: float) -> Exit:
        return await stop_process(proc, grace)

    def kill(self, proc: AgentProcess) -> None:
        signal_group(proc.pid, signal.SIGKILL)

    async def sweep(self, agent_id: str, name: str, incarnation: int) -> None:
        await sweep_incarnation(agent_id, name, incarnation)


def find_agent_process(pid: int, agent_id: str, incarnation: int) -> bool:
    """True when `pid` is still the hive-agent of this agent and incarnation (pids get reused)."""
    import psutil

    try:
        env = psutil.Process(pid).environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return env.get("HIVE_AGENT_ID") == agent_id and env.get("HIVE_AGENT_INCARNATION") == str(incarnation)
