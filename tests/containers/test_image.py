"""The Hive image (deploy/Containerfile, built here by deploy/build-image.sh): hived starts in it as a
non-root user and is healthy; from the host, over TCP with a token, an agent is declared and a task
runs on it inside the container; `kill` of the container and a new one on the same volume keep every
task that was accepted (they all complete)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.containers.podman import podman, ulimits
from tests.e2e.test_cli_offline import HIVECTL
from tests.helpers import wait_for

# The first test to run builds the image (about a minute, several when the machine is busy).
pytestmark = pytest.mark.timeout(900)

MAX_IMAGE_BYTES = 250 * 10**6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Deployment:
    """hived in a container of the image, its state on a named volume, its TCP port on the host."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.name = f"hive-test-{uuid.uuid4().hex[:10]}"
        self.volume = self.name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def run(self) -> None:
        podman(
            "run", "--detach", "--name", self.name, *ulimits(),
            "--volume", f"{self.volume}:/var/lib/hive", "--publish", f"127.0.0.1:{self.port}:8700",
            self.image, "--listen", "0.0.0.0:8700",
        )  # fmt: skip
        wait_for(self.healthy, timeout=60, interval=0.2, what=f"the image's HEALTHCHECK ({self.logs()})")

    def healthy(self) -> bool:
        return podman("healthcheck", "run", self.name, check=False).returncode == 0

    def logs(self) -> str:
        return podman("logs", self.name, check=False).stderr[-2000:]

    def kill(self) -> None:
        podman("kill", "--signal", "KILL", self.name)
        podman("rm", "--force", self.name)

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)
        podman("volume", "rm", "--force", self.volume, check=False)


@pytest.fixture
def deployment(image: str) -> Iterator[Deployment]:
    made = Deployment(image)
    yield made
    made.remove()


def test_the_image_serves_tasks_over_tcp_and_keeps_them_across_a_kill(deployment: Deployment) -> None:
    size = int(podman("image", "inspect", "--format", "{{.Size}}", deployment.image).stdout)
    assert size < MAX_IMAGE_BYTES, f"the image is {size / 1e6:.0f} MB"
    deployment.run()
    assert podman("exec", deployment.name, "id", "-un").stdout.strip() == "hive"  # not root
    created = podman("exec", deployment.name, "hivectl", "token", "create", "--scope", "admin")
    token = created.stdout.split()[0]
    anonymous = httpx.get(f"{deployment.url}/tasks", timeout=10)
    assert anonymous.status_code == 401

    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=deployment.url, headers=bearer, timeout=30) as api:
        handler = {"python": "hivectl.agent.builtin:act"}
        assert api.post("/agents", json={"name": "inside", "handler": handler}).status_code in (200, 201)
        wait_for(lambda: api.get("/agents/inside").json()["status"] == "active", what="agent active")
        first = submit_with_hivectl(deployment.url, token)
        assert first["status"] == "completed" and first["result"] == {"from": "the host"}, first

        accepted = [first["id"]]
        for n in range(20):
            task = api.post("/tasks", json={"type": "inside", "payload": {"sleep": 0.2, "result": {"n": n}}})
            assert task.status_code == 201
            accepted.append(task.json()["id"])
        unfinished = [t for t in accepted if api.get(f"/tasks/{t}").json()["status"] != "completed"]
        assert unfinished  # 4 s of work: most are queued or running when the container is killed
        deployment.kill()
        deployment.run()

        def all_done() -> list[dict[str, Any]]:
            tasks = [api.get(f"/tasks/{task_id}").json() for task_id in accepted]
            return tasks if all(t["status"] == "completed" for t in tasks) else []

        tasks = wait_for(all_done, timeout=90, interval=0.5, what="every accepted task completed")
        assert [t["result"] for t in tasks[1:]] == [{"n": n} for n in range(20)]


def submit_with_hivectl(url: str, token: str) -> dict[str, Any]:
    """The CLI on the host, reaching hived in the container over TCP with the token."""
    env = {**os.environ, "HIVE_URL": url, "HIVE_TOKEN": token}
    env.pop("HIVE_SOCKET", None)
    done = subprocess.run(
        [*HIVECTL, "task", "submit", "inside", "--payload", '{"result": {"from": "the host"}}', "--wait",
         "-o", "json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))
