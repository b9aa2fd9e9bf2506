"""Every input limit, set low in hived.yaml (or the environment, for YAML read by hivectl): what is over
it is refused with 413 or 422 and a message naming the limit, and changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli_offline import hivectl
from tests.helpers import Hived, wait_for

CONFIG = """kind: Daemon
max_request_bytes: 16KiB
max_payload_bytes: 4KiB
max_result_bytes: 1KiB
max_output_bytes: 1KiB
max_page_size: 20
"""


@pytest.fixture
def small(hived_factory: Any, tmp_path: Path) -> Hived:
    config = tmp_path / "hived.yaml"
    config.write_text(CONFIG)
    return hived_factory(extra_args=["--config", str(config)])


def test_request_body(small: Hived) -> None:
    big = small.client.post("/tasks", json={"type": "t", "payload": {"blob": "x" * 20_000}})
    assert big.status_code == 413 and "max_request_bytes (16384)" in big.json()["detail"]


def test_task_payload(small: Hived) -> None:
    before = small.api("GET", "/tasks")["total"]
    one = small.client.post("/tasks", json={"type": "t", "payload": {"blob": "x" * 5000}})
    assert one.status_code == 413
    assert one.json()["detail"].startswith("payload: 50") and "max_payload_bytes (4096)" in one.text
    batch = small.client.post(
        "/tasks/batch",
        json={"tasks": [{"type": "t", "requires": ["x"]}, {"type": "t", "payload": {"b": "y" * 5000}}]},
    )
    assert batch.status_code == 413
    assert small.api("GET", "/tasks")["total"] == before  # all or nothing: the small one is not kept


def test_context_value(small: Hived) -> None:
    small.api("POST", "/workflows", json={"name": "gate", "steps": [{"id": "a", "type": "approval"}]})
    run = small.api("POST", "/workflows/gate/execute", json={})["id"]
    big = small.client.put(f"/runs/{run}/context/k", json={"value": "x" * 5000})
    assert big.status_code == 413 and "context value 'k'" in big.json()["detail"]
    assert small.client.get(f"/runs/{run}/context/k").status_code == 404
    small.api("POST", f"/runs/{run}/cancel")


def test_rendered_step_payload_fails_the_step(small: Hived) -> None:
    small.api(
        "POST",
        "/workflows",
        json={
            "name": "big-step",
            "params": {"blob": ""},
            "steps": [{"id": "a", "type": "t", "payload": {"text": "${{ params.blob + params.blob }}"}}],
        },
    )
    run = small.api("POST", "/workflows/big-step/execute", json={"params": {"blob": "x" * 3000}})["id"]
    done = wait_for(
        lambda: (r := small.api("GET", f"/runs/{run}"))["status"] == "failed" and r, what="run failed"
    )
    [step] = done["steps"]
    assert step["status"] == "failed" and "max_payload_bytes" in step["error"]
    assert small.api("GET", "/tasks", params={"run": run})["total"] == 0


def test_result_too_large_fails_the_attempt(small: Hived) -> None:
    small.spawn("echo", {"python": "hivectl.agent.builtin:echo"}, capabilities=["echo"])
    task = small.submit("echo", requires=["echo"], payload={"blob": "x" * 2000}, max_attempts=1)
    done = small.wait_task(task["id"])
    assert done["status"] == "failed" and done["result"] is None
    assert "max_result_bytes (1024)" in done["error"]
    assert done["attempt_history"][-1]["reason"] == "result_too_large"
    fine = small.wait_task(small.submit("echo", requires=["echo"], payload={"n": 1})["id"])
    assert fine["status"] == "completed" and fine["result"] == {"n": 1}


def test_output_keeps_its_tail(small: Hived) -> None:
    script = (
        "import sys; sys.stdin.read(); print('A' * 3000, file=sys.stderr); "
        "print('the end', file=sys.stderr, flush=True); print('{}')"
    )
    small.spawn("talker", {"exec": [sys.executable, "-c", script]}, capabilities=["talk"])
    done = small.wait_task(small.submit("talk", requires=["talk"])["id"])
    assert done["status"] == "completed"
    logs = small.api("GET", f"/tasks/{done['id']}/logs")
    assert "bytes cut: max_output_bytes" in logs and "the end" in logs
    assert logs.count("A") < 1100


def test_page_size(small: Hived) -> None:
    for path in ("/tasks", "/agents", "/runs"):
        over = small.client.get(path, params={"limit": 21})
        assert over.status_code == 422 and "limit: 21 is over hived's max_page_size (20)" in over.text
        assert small.client.get(path, params={"limit": 20}).status_code == 200


def test_config_limits_are_validated(tmp_path: Path) -> None:
    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\nmax_payload_bytes: 10\n")
    checked = subprocess.run(
        [sys.executable, "-m", "hived.main", "--config", str(config), "--check-config"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 1 and "hived.yaml:2: max_payload_bytes" in checked.stderr


def test_yaml_size_and_aliases_from_the_environment(small: Hived, tmp_path: Path) -> None:
    doc = tmp_path / "agents.yaml"
    doc.write_text("kind: Agent\nname: a\nhandler: {python: 'hivectl.agent.builtin:noop'}\n" + "#" * 300)
    env = dict(small.env)
    too_big = hivectl("apply", "-f", str(doc), env=env | {"HIVE_MAX_YAML_BYTES": "200"})
    assert too_big.returncode != 0 and "agents.yaml:1: larger than 200 bytes" in too_big.stderr
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text(
        "kind: Agent\nname: b\nhandler: {python: 'hivectl.agent.builtin:noop'}\n"
        "capabilities: &c [x]\nx-more: [*c, *c, *c]\n"
    )
    refused = hivectl("apply", "-f", str(aliases), env=env | {"HIVE_MAX_YAML_ALIASES": "2"})
    assert refused.returncode != 0 and "more than 2 YAML aliases" in refused.stderr
    bad = hivectl("apply", "-f", str(aliases), env=env | {"HIVE_MAX_YAML_ALIASES": "lots"})
    assert bad.returncode != 0 and "HIVE_MAX_YAML_ALIASES: 'lots'" in bad.stderr
    names = {a["name"] for a in small.api("GET", "/agents")["items"]}
    assert not {"a", "b"} & names


def test_hivectl_lists_every_agent_across_pages(hived_factory: Any, tmp_path: Path) -> None:
    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\nmax_page_size: 2\n")
    hived: Hived = hived_factory(extra_args=["--config", str(config)])
    for name in ("a1", "a2", "a3", "a4", "a5"):
        hived.spawn(name, {"python": "hivectl.agent.builtin:noop"}, wait_active=False)
    listed = hivectl("agent", "list", "-o", "json", env=dict(hived.env))
    assert listed.returncode == 0, listed.stderr
    assert sorted(a["name"] for a in json.loads(listed.stdout)) == ["a1", "a2", "a3", "a4", "a5"]
