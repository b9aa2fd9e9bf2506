"""In-memory agent processes for in-process tests (as procrastinate ships an InMemoryConnector):
`FakeProcesses` implements the `Processes` port; its processes run until the test makes them exit
(`FakeProcess.exit`) or hived stops or kills them. Nothing is started on the host."""

from __future__ import annotations

import asyncio
import itertools
import signal
from dataclasses import dataclass, field
from pathlib import Path

from hived.agents.container import Launch
from hived.agents.process import AgentProcess, Exit, NotStarted, exit_of
from hived.clock import SYSTEM_CLOCK, Clock


@dataclass
class FakeProcess:
    """One pretend incarnation. `ignores_term`: a SIGTERM does nothing (a hung agent), so a stop
    waits its grace and kills."""

    pid: int
    agent_id: str
    incarnation: int
    env: dict[str, str] = field(default_factory=dict)
    ignores_term: bool = False
    returncode: int | None = None
    signals: list[int] = field(default_factory=list)
    _exited: asyncio.Event = field(default_factory=asyncio.Event)

    def exit(self, code: int = 0) -> None:
        """The process ends with exit `code` (negative: killed by that signal)."""
        if self.returncode is None:
            self.returncode = code
            self._exited.set()

    async def wait(self) -> int | None:
        await self._exited.wait()
        return self.returncode


@dataclass
class AdoptedFake:
    """A FakeProcess seen by a later hived: like a real adopted process, its exit status is unknown."""

    process: FakeProcess

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return None

    async def wait(self) -> int | None:
        await self.process.wait()
        return None


class FakeProcesses:
    """A process table in memory. It outlives an AgentManager, so a second manager on the same
    database can adopt what the first left running (a hived restart)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.swept: list[tuple[str, int]] = []  # (agent id, incarnation) of every sweep asked for
        self.clock = clock
        self.spawned: list[FakeProcess] = []
        self.fail_spawn: Exception | None = None  # raised by the next spawn, once
        self._pids = itertools.count(10_000)
        self.launches: list[Launch | None] = []  # the container of every spawn (None: a process)
        self.not_started: str | None = None  # every spawn ends at once, for this reason (podman missing)

    def running(self, agent_id: str) -> list[FakeProcess]:
        return [p for p in self.spawned if p.agent_id == agent_id and p.returncode is None]

    def current(self, agent_id: str) -> FakeProcess:
        """The one live process of this agent (a test error when there is none or several)."""
        (proc,) = self.running(agent_id)
        return proc

    async def spawn(
        self, agent_id: str, incarnation: int, log_path: Path, env: dict[str, str], socket_path: Path | None,
        launch: Launch | None = None,
    ) -> AgentProcess:
        self.launches.append(launch)
        if self.not_started is not None:
            return NotStarted(self.not_started)
        if self.fail_spawn is not None:
            error, self.fail_spawn = self.fail_spawn, None
            raise error
        proc = FakeProcess(next(self._pids), agent_id, incarnation, dict(env))
        self.spawned.append(proc)
        return proc

    def adopt(self, pid: int, agent_id: str, incarnation: int) -> AgentProcess | None:
        for proc in self.spawned:
            if (proc.pid, proc.agent_id, proc.incarnation) == (pid, agent_id, incarnation):
                return AdoptedFake(proc) if proc.returncode is None else None
        return None

    async def stop(self, handle: AgentProcess, grace: float) -> Exit:
        proc = _unwrap(handle)
        if proc.returncode is None:
            proc.signals.append(signal.SIGTERM)
            if not proc.ignores_term:
                proc.exit(-signal.SIGTERM)
            elif not await self.clock.wait(proc._exited, grace):
                self.kill(proc)
        if isinstance(handle, AdoptedFake) or proc.returncode is None:
            return Exit(None, None)
        return exit_of(proc.returncode)

    def kill(self, handle: AgentProcess) -> None:
        proc = _unwrap(handle)
        proc.signals.append(signal.SIGKILL)
        proc.exit(-signal.SIGKILL)

    async def sweep(self, agent_id: str, name: str, incarnation: int) -> None:
        self.swept.append((agent_id, incarnation))


def _unwrap(handle: AgentProcess) -> FakeProcess:
    proc = handle.process if isinstance(handle, AdoptedFake) else handle
    assert isinstance(proc, FakeProcess), f"not a fake process: {handle!r}"
    return proc
