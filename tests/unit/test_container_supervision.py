"""Container agents under supervision, in this process (fake clock, in-memory processes): the manager
hands the container to the process port with the agent's workdir, and an incarnation that could not
start (podman missing, the image not on the host) is a crash like any other: restarts with backoff,
then `failed` with the reason that says why; never a tight loop."""

from __future__ import annotations

from hived.agents.container import Launch
from hived.model import paths
from hived.model.containers import ContainerRuntime
from hived.model.schemas import AgentSpec
from tests.unit.inprocess import Core, spawn

RUNTIME = {"container": "localhost/hive:latest", "mounts": ["/data:/data:ro"]}


async def test_the_manager_hands_the_container_and_workdir_to_the_process_port(hive: Core) -> None:
    boxed = await spawn(hive, name="boxed", runtime=RUNTIME)
    await spawn(hive, name="plain")
    folder = paths.agent_dir(hive.agents.state_dir, "boxed")
    workdir = str(folder / "work")
    runtime = ContainerRuntime.model_validate(RUNTIME)
    attempts = (str(folder / "workspaces"), str(folder / "artifacts"))  # its attempts' folders, mounted too
    assert hive.processes.launches == [Launch(runtime, workdir, hive.agents.state_dir, attempts), None]
    assert boxed.status == "active"


async def test_a_container_that_cannot_start_fails_after_its_restart_policy(hive: Core) -> None:
    reason = "podman not found ('podman' on hived's PATH): container agents need podman on the host"
    hive.processes.not_started = reason
    restart = {"max_restarts": 2, "window": "10m", "initial_delay": "1s", "max_delay": "1s"}
    spec = {"name": "boxed", "handler": {"exec": ["true"]}, "runtime": RUNTIME, "restart": restart}
    agent = await hive.agents.create(AgentSpec.model_validate(spec))
    agent.backoff.rand = lambda: 0.5
    for _ in range(2):
        assert agent.watcher is not None
        await agent.watcher
        assert agent.status == "starting" and reason in (agent.status_reason or "")
        assert agent.pending_restart is not None
        await hive.clock.advance(1)
        await agent.pending_restart
    assert agent.watcher is not None
    await agent.watcher
    assert agent.status == "failed"
    assert agent.status_reason == f"restart limit reached: 2 restarts within 600s; last: {reason}"
    await hive.clock.advance(3600)
    assert len(hive.processes.launches) == 3 and agent.incarnation == 3
    incarnations = await hive.agents.incarnations(agent)
    assert [(i.number, i.exit_code, i.reason) for i in incarnations] == [(n, 127, reason) for n in (1, 2, 3)]
