"""A container agent that cannot start, on a real hived and without podman: podman missing, or a socket
whose directory is the state directory (mounting it would hand the container the database). The agent
ends `failed` with the reason, after its restart policy; hived keeps serving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Hived, wait_for

RESTART = {"max_restarts": 1, "initial_delay": "100ms"}


def failed_reason(hived: Hived, name: str) -> str:
    agent = wait_for(
        lambda: (a := hived.api("GET", f"/agents/{name}"))["status"] == "failed" and a, what=f"{name} failed"
    )
    assert agent["restarts"] == 1 and agent["pid"] in (None, 0)
    return str(agent["status_reason"])


@pytest.mark.parametrize(
    ("own_socket_dir", "why"),
    [
        (True, "podman not found ('/nonexistent/podman' on hived's PATH): container agents need podman"),
        (False, "hived's socket directory {state} holds its state directory {state}"),
    ],
)
def test_a_container_agent_that_cannot_start_fails_with_the_reason(
    hived_factory: Callable[..., Hived],
    tmp_path_factory: pytest.TempPathFactory,
    own_socket_dir: bool,
    why: str,
) -> None:
    socket = tmp_path_factory.mktemp("run") / "hived.sock" if own_socket_dir else None
    hived = hived_factory(socket=socket, env={"HIVE_PODMAN": "/nonexistent/podman --runtime runc"})
    runtime = {"container": "localhost/hive:latest"}
    hived.spawn("boxed", {"exec": ["true"]}, wait_active=False, runtime=runtime, restart=RESTART)
    reason = failed_reason(hived, "boxed")
    state = Path(hived.state_dir).resolve()
    assert reason.startswith("restart limit reached: 1 restarts within 60s; last: " + why.format(state=state))
    assert "hived: cannot start the container: " in hived.api("GET", "/agents/boxed/logs")
    assert hived.api("GET", "/healthz")  # a crash loop of hived it was not
