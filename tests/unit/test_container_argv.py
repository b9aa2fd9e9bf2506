"""Container agents, the pure parts: `runtime:` in an Agent document, and podman's argv built from it
(hived/agents/container.py): argv lists only, the workdir and the socket directory mounted, nothing
else of the host but `mounts`."""

from __future__ import annotations

from pathlib import Path

import pytest

from hived.agents.container import (
    Host,
    Launch,
    container_name,
    engine,
    engine_environment,
    launch_of,
    launch_problem,
    remove_argv,
    run_argv,
)
from hived.model.containers import ContainerRuntime, Mount, parse_mount
from hived.model.documents import DocumentError, load_documents
from hived.model.schemas import AgentSpec

ROOT = Host(uid=0, gid=0, nofile=(20000, 20000), nproc=(96365, 96365))
IDS = {"HIVE_AGENT_ID": "a1", "HIVE_AGENT_INCARNATION": "3"}


def argv(runtime: dict, host: Host = ROOT, podman: list[str] | None = None) -> list[str]:
    launch = Launch(ContainerRuntime.model_validate(runtime), "/srv/hive/agents/x/work", Path("/srv/hive"))
    return run_argv(podman or ["podman"], launch, host, "a1", 3, Path("/run/user/0/hive/hived.sock"), IDS)


def values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == flag]


def test_the_whole_argv_of_a_default_container() -> None:
    assert argv({"container": "localhost/hive:latest"}) == [
        "podman", "run", "--rm", "--init", "--pull=never",
        "--name", "hive-agent-a1-3", "--label", "hive.agent=a1", "--label", "hive.incarnation=3",
        "--network", "none", "--no-healthcheck", "--user", "0:0",
        "--cap-drop=all", "--security-opt=no-new-privileges",
        "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096",
        "--volume", "/run/user/0/hive:/run/hive:rw",
        "--volume", "/srv/hive/agents/x/work:/srv/hive/agents/x/work:rw",
        "--workdir", "/srv/hive/agents/x/work",
        "--env", "HIVE_AGENT_ID=a1", "--env", "HIVE_AGENT_INCARNATION=3",
        "--env", "HIVE_SOCKET=/run/hive/hived.sock",
        "--entrypoint", "hive-agent", "localhost/hive:latest",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("runtime", "flag", "expected"),
    [
        ({"network": "host"}, "--network", ["host"]),
        ({"mounts": ["/data:/in:ro"]}, "--volume", ["/run/user/0/hive:/run/hive:rw", "/srv/hive/agents/x/work:/srv/hive/agents/x/work:rw", "/data:/in:ro"]),  # noqa: E501
        ({"mounts": ["/cache"]}, "--volume", ["/run/user/0/hive:/run/hive:rw", "/srv/hive/agents/x/work:/srv/hive/agents/x/work:rw", "/cache:/cache:rw"]),  # noqa: E501
        ({"mounts": ["/a b/c:/d:rw"]}, "--volume", ["/run/user/0/hive:/run/hive:rw", "/srv/hive/agents/x/work:/srv/hive/agents/x/work:rw", "/a b/c:/d:rw"]),  # noqa: E501
    ],
)
def test_runtime_fields_become_flags(runtime: dict, flag: str, expected: list[str]) -> None:
    assert values(argv({"container": "img", **runtime}), flag) == expected


@pytest.mark.parametrize(
    ("host", "user", "limits"),
    [
        (ROOT, ["0:0"], ["nofile=20000:20000", "nproc=4096:4096"]),
        (Host(1000, 100, (1024, 4096), (-1, -1)), ["1000:100"], ["nofile=1024:4096", "nproc=4096:4096"]),
        (Host(1000, 100, (1024, 4096), (200, 300)), ["1000:100"], ["nofile=1024:4096", "nproc=200:300"]),
    ],
)
def test_hiveds_uid_and_limits(host: Host, user: list[str], limits: list[str]) -> None:
    args = argv({"container": "img"}, host)
    assert values(args, "--user") == user
    assert ("--userns=keep-id" in args) == (host.uid != 0)  # rootless: the same uid inside
    assert values(args, "--ulimit") == limits


def test_a_hostile_image_name_or_engine_stays_one_argument() -> None:
    args = argv({"container": "img"}, podman=["/opt/podman", "--runtime", "runc"])
    assert args[:4] == ["/opt/podman", "--runtime", "runc", "run"] and args[-1] == "img"
    with pytest.raises(ValueError, match="image reference"):
        ContainerRuntime(container="--privileged")
    with pytest.raises(ValueError, match="image reference"):
        ContainerRuntime(container="img; rm -rf /")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ["podman"]),
        ({"HIVE_PODMAN": ""}, ["podman"]),
        ({"HIVE_PODMAN": "podman --runtime runc --cgroup-manager=cgroupfs"},
         ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]),
        ({"HIVE_PODMAN": "'/opt/my podman/podman'"}, ["/opt/my podman/podman"]),
    ],
)  # fmt: skip
def test_engine_comes_from_hive_podman(environ: dict[str, str], expected: list[str]) -> None:
    assert engine(environ) == expected


def test_names_removal_and_podmans_environment() -> None:
    assert container_name("a1", 3) == "hive-agent-a1-3"
    assert remove_argv(["podman"], "a1", 3) == [
        "podman", "rm", "--force", "--ignore", "--time", "0", "hive-agent-a1-3",
    ]  # fmt: skip
    environ = {"XDG_RUNTIME_DIR": "/run/user/1000", "CONTAINERS_CONF": "/c.conf", "HIVE_DB": "secret"}
    assert engine_environment(environ, {"PATH": "/bin", **IDS}) == {
        "XDG_RUNTIME_DIR": "/run/user/1000", "CONTAINERS_CONF": "/c.conf", "PATH": "/bin", **IDS,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("socket", "workdir", "problem"),
    [
        ("/run/hive/hived.sock", "/srv/hive/agents/x/work", None),
        ("/srv/hive/run/hived.sock", "/srv/hive/agents/x/work", None),
        (None, "/srv/hive/agents/x/work", "no Unix socket"),
        ("/srv/hive/hived.sock", "/srv/hive/agents/x/work", "holds its state directory /srv/hive"),
        ("/srv/hived.sock", "/srv/hive/agents/x/work", "holds its state directory"),
        ("/w/hived.sock", "/w", "holds its workdir /w"),
        ("/run/hive/hived.sock", "/srv/a:b", "cannot contain ':'"),
    ],
)
def test_what_cannot_be_mounted(socket: str | None, workdir: str, problem: str | None) -> None:
    found = launch_problem(Path(socket) if socket else None, Path("/srv/hive"), workdir)
    assert found is None if problem is None else problem in (found or "")


@pytest.mark.parametrize(
    ("text", "mount"),
    [
        ("/data", Mount(source="/data", target="/data")),
        ("/data:ro", Mount(source="/data", target="/data", read_only=True)),
        ("/data/:/in/", Mount(source="/data", target="/in")),
        ("/data:/in:rw", Mount(source="/data", target="/in")),
    ],
)
def test_mounts_are_parsed(text: str, mount: Mount) -> None:
    assert parse_mount(text) == mount


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("data:/in", "absolute path"),
        ("/data:in", "absolute path"),
        ("/a:/b:/c", "SOURCE[:TARGET]"),
        ("/data:/in:rx", "SOURCE[:TARGET]"),
        ("/a,b:/in", "absolute path"),
        ("/data/../etc:/in", "'..'"),
        ("/data:/", "reserved"),
        ("/data:/run/hive", "reserved"),
        ("/data:/run/hive/x", "reserved"),
    ],
)
def test_bad_mounts_are_refused(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("[", r"\[")):
        parse_mount(text)


def test_an_agent_document_with_a_runtime_and_its_errors_by_line() -> None:
    text = "kind: Agent\nname: boxed\nhandler: {exec: [cat]}\nruntime:\n  container: localhost/hive\n"
    (doc,) = load_documents(text, "a.yaml")
    assert isinstance(doc.spec, AgentSpec)
    assert doc.spec.runtime == ContainerRuntime(container="localhost/hive")
    assert launch_of(doc.spec.runtime, "/w", Path("/s")) == Launch(doc.spec.runtime, "/w", Path("/s"))
    assert launch_of(None, "/w", Path("/s")) is None
    bad = text + "  network: bridge\n"
    with pytest.raises(DocumentError, match=r"a.yaml:6: runtime.network: .*'none' or 'host'"):
        load_documents(bad, "a.yaml")
    twice = text + "  mounts: [/a:/x, /b:/x]\n"
    with pytest.raises(DocumentError, match=r"a.yaml:6: runtime.mounts: .*mounted twice"):
        load_documents(twice, "a.yaml")
    with pytest.raises(DocumentError, match=r"a.yaml:4: runtime.container: field required|runtime.container"):
        load_documents(text.replace("  container: localhost/hive\n", "  network: host\n"), "a.yaml")
