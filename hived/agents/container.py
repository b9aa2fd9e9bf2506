"""podman's argv for a container agent (`runtime: {container: ...}` on an Agent). Pure: everything it
needs is given (ids, paths, hived's uid and limits), and it returns argv lists, never shell strings;
hived/agents/podman.py runs them.

The container is named after the agent and its incarnation (`hive-agent-ID-N`), labelled with both,
and started with `podman run --rm` attached: the podman process is the agent's process for hived (its
pid is recorded, its exit is the incarnation's end, SIGTERM reaches hive-agent through podman's
signal proxy, its output is the agent's log). Inside: the agent's workdir at its own path, hived's
socket directory at /run/hive, the `mounts`, and nothing else of the host; no capabilities, no new
privileges, hived's own uid (so the socket's peer check lets it in and the files it writes are
hived's), hived's open-file limit and at most NPROC processes (podman's defaults for both can exceed
what the host lets a container have: runc then fails with "error setting rlimit ... operation not
permitted"; and root's NPROC counts every process of uid 0 once the capabilities are dropped).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from hived.model.containers import SOCKET_MOUNT, ContainerRuntime

ENGINE_ENV = "HIVE_PODMAN"  # podman's argv, e.g. "podman --runtime runc --cgroup-manager=cgroupfs"
AGENT_COMMAND = "hive-agent"
NPROC = 4096
# What the podman process needs of hived's environment beyond an agent's (rootless podman's runtime
# dir, podman's own configuration files).
ENGINE_ENV_NAMES = frozenset({"XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "REGISTRY_AUTH_FILE"})
ENGINE_ENV_PREFIXES = ("CONTAINERS_",)


@dataclass(frozen=True)
class Launch:
    """What the manager knows of a container agent's incarnation to start."""

    runtime: ContainerRuntime
    workdir: str
    state_dir: Path
    folders: tuple[str, ...] = ()  # mounted read-write at their own paths: the attempts' folders, a repo


def launch_of(
    runtime: ContainerRuntime | None, workdir: str, state_dir: Path, folders: tuple[str, ...] = ()
) -> Launch | None:
    """The container of a spawned agent's spec, or None: its hive-agent is a process of hived's user."""
    return Launch(runtime, workdir, state_dir, folders) if runtime is not None else None


@dataclass(frozen=True)
class Host:
    """What of hived's host goes into the argv: its uid/gid and its limits (soft, hard)."""

    uid: int
    gid: int
    nofile: tuple[int, int]
    nproc: tuple[int, int]


def engine(environ: dict[str, str]) -> list[str]:
    """podman's argv prefix: HIVE_PODMAN split as a shell would split words (operator's config, never
    a payload), else plain `podman`."""
    return shlex.split(environ.get(ENGINE_ENV, "")) or ["podman"]


def container_name(agent_id: str, incarnation: int) -> str:
    return f"hive-agent-{agent_id}-{incarnation}"


def launch_problem(socket_path: Path | None, state_dir: Path, workdir: str) -> str | None:
    """Why the agent's workdir or hived's socket directory cannot be mounted into its container."""
    if ":" in workdir or "," in workdir:
        return f"workdir {workdir!r}: a container agent's workdir cannot contain ':' or ','"
    if socket_path is None:
        return "hived serves no Unix socket here: a container agent reaches hived through its socket"
    folder = socket_path.parent.resolve()
    for what, path in (("state directory", state_dir.resolve()), ("workdir", Path(workdir).resolve())):
        if path == folder or folder in path.parents:
            return (
                f"hived's socket directory {folder} holds its {what} {path}: mounted into the container it "
                f"would expose it; give the socket a directory of its own (--socket /run/hive/hived.sock)"
            )
    return None


def _limit(value: int) -> str:
    return "-1" if value < 0 else str(value)


def run_argv(
    podman: list[str],
    launch: Launch,
    host: Host,
    agent_id: str,
    incarnation: int,
    socket_path: Path,
    env: dict[str, str],
) -> list[str]:
    """`podman run` of one incarnation. `env` is what hive-agent gets (ids, log bound); the socket is
    given as its path inside the container."""
    runtime = launch.runtime
    user = ["--user", f"{host.uid}:{host.gid}"] + (["--userns=keep-id"] if host.uid != 0 else [])
    limits = []
    nproc = [NPROC if n < 0 else min(n, NPROC) for n in host.nproc]
    for name, (soft, hard) in (("nofile", host.nofile), ("nproc", nproc)):
        limits += ["--ulimit", f"{name}={_limit(soft)}:{_limit(hard)}"]
    volumes = ["--volume", f"{socket_path.parent}:{SOCKET_MOUNT}:rw"]
    own = [f"{path}:{path}:rw" for path in (launch.workdir, *launch.folders)]
    for volume in [*own, *(m.volume() for m in runtime.parsed_mounts())]:
        volumes += ["--volume", volume]
    inner = dict(env) | {"HIVE_SOCKET": f"{SOCKET_MOUNT}/{socket_path.name}"}
    env_args = [arg for key in sorted(inner) for arg in ("--env", f"{key}={inner[key]}")]
    return [
        *podman, "run", "--rm", "--init", "--pull=never",
        "--name", container_name(agent_id, incarnation),
        "--label", f"hive.agent={agent_id}", "--label", f"hive.incarnation={incarnation}",
        "--network", runtime.network, "--no-healthcheck", *user,
        "--cap-drop=all", "--security-opt=no-new-privileges", *limits,
        *volumes, "--workdir", launch.workdir, *env_args,
        "--entrypoint", AGENT_COMMAND, runtime.container,
    ]  # fmt: skip


def image_exists_argv(podman: list[str], image: str) -> list[str]:
    return [*podman, "image", "exists", image]


def remove_argv(podman: list[str], agent_id: str, incarnation: int) -> list[str]:
    return [*podman, "rm", "--force", "--ignore", "--time", "0", container_name(agent_id, incarnation)]


def engine_environment(environ: dict[str, str], agent_env: dict[str, str]) -> dict[str, str]:
    """The podman process's environment: the agent's (its ids among them, so that adoption after a
    hived restart knows the podman process as that incarnation's) and what podman itself reads."""
    extra = {k: v for k, v in environ.items() if k in ENGINE_ENV_NAMES or k.startswith(ENGINE_ENV_PREFIXES)}
    return extra | agent_env
