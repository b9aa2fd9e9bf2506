"""Starting a container agent's incarnation with podman (the argv comes from hived/agents/container.py).

What can be known before `podman run` is checked first, so that the agent's end says why it could not
start (podman missing, the image not on this host, a socket directory that would expose the state
directory) instead of a bare exit code: the incarnation then ends at once (`NotStarted`), the reason is
written to the agent's log too, and the restart policy decides, as after any crash: restarts with
backoff, then `failed` with that reason. Everything after the start is a process agent's: the podman
process is watched, stopped, killed, adopted and swept as hive-agent would be (hived/agents/process.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import shutil
from pathlib import Path

from hived.agents.container import (
    Host,
    Launch,
    engine,
    engine_environment,
    image_exists_argv,
    launch_problem,
    remove_argv,
    run_argv,
)
from hived.agents.process import AGENT_ENV_NAMES, AgentProcess, NotStarted, OsProcesses, agent_environment
from hived.agents.quick import run_quick

log = logging.getLogger("hived.agents")
CHECK_TIMEOUT = 60.0  # seconds for `podman image exists` (its first call may set up podman's store)


def this_host() -> Host:
    nofile, nproc = resource.getrlimit(resource.RLIMIT_NOFILE), resource.getrlimit(resource.RLIMIT_NPROC)
    return Host(os.getuid(), os.getgid(), nofile, nproc)


async def _check(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run a quick podman command; its exit status and the last line it wrote."""
    done = await run_quick(argv, env, CHECK_TIMEOUT, merge=True)
    if done is None:
        return -1, f"no answer in {CHECK_TIMEOUT:g}s"
    lines = done[1].strip().splitlines()
    return done[0], lines[-1] if lines else ""


async def _problem(
    launch: Launch, podman: list[str], socket_path: Path | None, env: dict[str, str]
) -> str | None:
    if problem := launch_problem(socket_path, launch.state_dir, launch.workdir):
        return problem
    if shutil.which(podman[0], path=env.get("PATH")) is None:
        return f"podman not found ({podman[0]!r} on hived's PATH): container agents need podman on the host"
    try:
        Path(launch.workdir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"workdir {launch.workdir}: {exc.strerror or exc}"
    image = launch.runtime.container
    code, last = await _check(image_exists_argv(podman, image), env)
    if code == 1:
        return f"container image {image!r} does not exist on this host (build it, or podman pull it, first)"
    if code != 0:
        return f"podman image exists {image}: {last or f'exit status {code}'}"
    return None


async def spawn_container(
    launch: Launch,
    agent_id: str,
    incarnation: int,
    log_path: Path,
    env: dict[str, str],
    socket_path: Path | None,
) -> AgentProcess:
    """`podman run` of the agent's container, attached: stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    environ = dict(os.environ)
    podman = engine(environ)
    outer = engine_environment(environ, agent_environment(environ, env, agent_id, incarnation, None))
    if problem := await _problem(launch, podman, socket_path, outer):
        log.warning("agent %s: cannot start its container: %s", agent_id, problem)
        with open(log_path, "ab", buffering=0) as out:
            out.write(f"hived: cannot start the container: {problem}\n".encode())
        return NotStarted(problem)
    assert socket_path is not None  # launch_problem said so
    inner = agent_environment({}, env, agent_id, incarnation, None)
    argv = run_argv(podman, launch, this_host(), agent_id, incarnation, socket_path, inner)
    with open(log_path, "ab", buffering=0) as out:
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=outer, start_new_session=True
        )


class HostProcesses(OsProcesses):
    """The agents of this host: processes of hived's user, or containers (`runtime:` on the Agent).
    Only the start differs: a container agent's podman process is then stopped, killed, adopted and
    swept like hive-agent (its container's processes carry the agent's id and incarnation too); the
    sweep of a container this hived started also removes the container, whatever state it is in."""

    def __init__(self) -> None:
        self.containers: set[tuple[str, int]] = set()  # (agent id, incarnation) started in a container

    async def spawn(
        self, agent_id: str, incarnation: int, log_path: Path, env: dict[str, str], socket_path: Path | None,
        launch: Launch | None = None,
    ) -> AgentProcess:
        if launch is None:
            return await super().spawn(agent_id, incarnation, log_path, env, socket_path)
        proc = await spawn_container(launch, agent_id, incarnation, log_path, env, socket_path)
        if not isinstance(proc, NotStarted):
            self.containers.add((agent_id, incarnation))
        return proc

    async def sweep(self, agent_id: str, name: str, incarnation: int) -> None:
        await super().sweep(agent_id, name, incarnation)
        if (agent_id, incarnation) in self.containers:
            self.containers.discard((agent_id, incarnation))
            environ = dict(os.environ)
            plain = {k: v for k, v in environ.items() if k in AGENT_ENV_NAMES}  # no secrets of hived's
            argv = remove_argv(engine(environ), agent_id, incarnation)
            code, last = await _check(argv, engine_environment(environ, plain))
            if code != 0:
                log.warning("agent %s: container of incarnation %d not removed: %s", name, incarnation, last)
