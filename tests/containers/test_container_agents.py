"""Agents in containers (`runtime: {container: IMAGE}`), with real podman, the Hive image and a real
hived: a task sees the agent's mounts and nothing else of the host (a file outside them fails with the
filesystem's own error), and the agent is supervised like a process agent: kill -9 of its container
restarts it with backoff and retries the task, a hived restart adopts it, a stop ends its container.
An image that does not exist fails the agent with that reason, after its restart policy."""

from __future__ import annotations

import os
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hived.agents.container import container_name
from tests.containers.podman import podman
from tests.helpers import Hived, wait_for

# The first test to run builds the image (about a minute, several when the machine is busy).
pytestmark = pytest.mark.timeout(900)

# An exec handler (stdlib only): the payload says what to read or write; errors are the OS's own.
PROBE = textwrap.dedent(
    """
    import json, os, sys
    job = json.load(sys.stdin)
    if os.environ["HIVE_ATTEMPT"] == "1" and job.get("hang_first"):
        import time; time.sleep(600)
    if "write" in job:
        open(job["write"], "w").write("x")
    text = open(job["read"]).read() if "read" in job else ""
    print(json.dumps({"text": text, "in_container": os.path.exists("/run/.containerenv"),
                      "uid": os.getuid(), "cwd": os.getcwd()}))
    """
)


def boxed(
    hived: Hived, name: str, image: str, mounts: list[str] | None = None, **spec: Any
) -> dict[str, Any]:
    runtime = {"container": image, "mounts": mounts or []}
    handler = {"exec": ["python3", "-c", PROBE]}
    return hived.spawn(name, handler, runtime=runtime, **spec)


def run(hived: Hived, type: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    task = hived.submit(type, payload=payload, **fields)
    return hived.wait_task(task["id"], timeout=60)


def containers_of(agent_id: str) -> list[str]:
    listed = podman("ps", "--all", "--filter", f"label=hive.agent={agent_id}", "--format", "{{.Names}}")
    return listed.stdout.split()


def test_a_container_agent_sees_its_mounts_and_nothing_else_of_the_host(
    boxed_hived: Hived, image: str, tmp_path: Path
) -> None:
    secret = tmp_path / "home" / "notes.txt"  # a host file outside the agent's mounts
    secret.parent.mkdir()
    secret.write_text("the host's own")
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("given to the agent")
    agent = boxed(boxed_hived, "boxed", image, mounts=[f"{data}:/data:ro"])

    done = run(boxed_hived, "boxed", {"read": "/data/in.txt", "write": "out.txt"})
    assert done["status"] == "completed", done
    workdir = boxed_hived.state_dir / "agents" / "boxed" / "work"
    expected = {"text": "given to the agent", "in_container": True, "uid": os.getuid(), "cwd": str(workdir)}
    assert done["result"] == expected  # hived's uid: the files it writes are hived's
    assert (workdir / "out.txt").read_text() == "x"  # the workdir is the host's, read-write

    outside = run(boxed_hived, "boxed", {"read": str(secret)}, max_attempts=1)
    assert outside["status"] == "failed"
    assert f"FileNotFoundError: [Errno 2] No such file or directory: '{secret}'" in outside["error"]
    read_only = run(boxed_hived, "boxed", {"write": "/data/new.txt"}, max_attempts=1)
    assert "OSError: [Errno 30] Read-only file system: '/data/new.txt'" in read_only["error"]
    assert not (data / "new.txt").exists()
    assert containers_of(agent["id"]) == [container_name(agent["id"], 1)]


def test_kill_9_of_its_container_restarts_it_with_backoff_and_retries_the_task(
    boxed_hived: Hived, image: str
) -> None:
    agent = boxed(boxed_hived, "phoenix", image, restart={"initial_delay": "1s"})
    task = boxed_hived.submit("phoenix", payload={"hang_first": True})
    wait_for(lambda: boxed_hived.task(task["id"])["status"] == "running", what="the first attempt running")
    podman("kill", "--signal", "KILL", container_name(agent["id"], 1))

    done = boxed_hived.wait_task(task["id"], timeout=60)
    assert done["status"] == "completed" and done["attempts"] == 2, done
    first = done["attempt_history"][0]
    assert first["outcome"] == "failed" and "phoenix" in (first["error"] or "")
    shown = boxed_hived.api("GET", "/agents/phoenix")
    assert shown["restarts"] == 1 and shown["incarnation"] == 2
    one, two = sorted(shown["incarnations"], key=lambda i: i["number"])
    assert one["exit_code"] == 137 and one["reason"] == "exited with code 137"
    backoff = datetime.fromisoformat(two["started_at"]) - datetime.fromisoformat(one["ended_at"])
    assert backoff.total_seconds() >= 0.9  # initial_delay 1s, jitter 10 %
    assert containers_of(agent["id"]) == [container_name(agent["id"], 2)]


def test_a_hived_restart_adopts_the_container_and_a_stop_ends_it(boxed_hived: Hived, image: str) -> None:
    agent = boxed(boxed_hived, "keeper", image)
    pid = agent["pid"] or boxed_hived.api("GET", "/agents/keeper")["pid"]
    boxed_hived.kill9()
    boxed_hived.start()
    wait_for(lambda: boxed_hived.api("GET", "/agents/keeper")["status"] == "active", what="keeper back")
    shown = boxed_hived.api("GET", "/agents/keeper")
    assert (shown["incarnation"], shown["pid"]) == (1, pid)
    assert "agent keeper: adopted running pid" in boxed_hived.log()
    assert run(boxed_hived, "keeper", {})["status"] == "completed"

    boxed_hived.api("DELETE", "/agents/keeper")
    wait_for(lambda: containers_of(agent["id"]) == [], what="its container gone")


def test_an_image_that_does_not_exist_fails_the_agent_with_that_reason(boxed_hived: Hived) -> None:
    restart = {"max_restarts": 1, "initial_delay": "100ms"}
    agent = boxed(boxed_hived, "ghost", "localhost/hive-no-such-image:0", wait_active=False, restart=restart)
    failed = wait_for(
        lambda: (a := boxed_hived.api("GET", "/agents/ghost"))["status"] == "failed" and a,
        what="ghost failed",
    )
    why = "container image 'localhost/hive-no-such-image:0' does not exist on this host"
    assert failed["status_reason"].startswith("restart limit reached: 1 restarts within 60s; last: " + why)
    log = boxed_hived.api("GET", "/agents/ghost/logs")
    assert "hived: cannot start the container: " + why in log
    assert failed["restarts"] == 1 and containers_of(agent["id"]) == []
