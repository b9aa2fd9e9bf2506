"""Secrets stay secret: an agent env value named in `secret_env` is a canary passed through every
input (the agent's env, a handler that prints it, returns it and fails with it); it must appear in
no log, no event, no API answer and no hivectl -o json output, while the handler still gets it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.e2e.test_cli_offline import hivectl
from tests.helpers import Hived

CANARY = "canary-5e3a9f0d27c14b8e"
LEAKY = """
import json, os, sys
key = os.environ["API_KEY"]
print("the key is", key, file=sys.stderr)
if json.load(sys.stdin).get("fail"):
    sys.exit("failed while holding " + key)
print(json.dumps({"echo": key, "len": len(key)}))
"""


def test_a_secret_env_value_appears_nowhere(hived_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hived: Hived = hived_factory(extra_args=["--log-level", "debug", "--access-log"])
    script = tmp_path / "leaky.py"
    script.write_text(LEAKY)
    hived.spawn(
        "holder",
        {"exec": [sys.executable, str(script)]},
        env={"API_KEY": CANARY, "PLAIN": "visible-value"},
        secret_env=["API_KEY"],
    )
    ok = hived.wait_task(hived.submit("t")["id"])
    failed = hived.wait_task(hived.submit("t", payload={"fail": True}, max_attempts=1)["id"])
    assert ok["status"] == "completed" and ok["result"]["len"] == len(CANARY)  # the handler had it
    assert ok["result"]["echo"] == "***"
    assert failed["status"] == "failed" and failed["error"].endswith("failed while holding ***")

    agent = hived.api("GET", "/agents/holder")
    assert agent["config"]["env"] == {"API_KEY": "***", "PLAIN": "visible-value"}
    outputs = [
        json.dumps(agent),
        json.dumps(hived.api("GET", "/agents")),
        json.dumps(hived.task(ok["id"])),
        json.dumps(hived.task(failed["id"])),
        hived.api("GET", f"/tasks/{ok['id']}/logs"),
        hived.api("GET", f"/tasks/{failed['id']}/logs"),
        hived.api("GET", "/agents/holder/logs"),
        hived.api("GET", "/events", params={"follow": "false"}),
    ]
    for args in (
        ["agent", "show", "holder"],
        ["agent", "list"],
        ["task", "list"],
        ["task", "logs", ok["id"]],
    ):
        result = hivectl(*args, "-o", "json", env=dict(hived.env))
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    hived.stop()
    files = [p for p in hived.state_dir.rglob("*.log")]
    assert any("agents" in str(p) for p in files)  # the agent's own log is among them
    outputs += [p.read_text(errors="replace") for p in files]
    leaks = [text[:200] for text in outputs if CANARY in text]
    assert leaks == []
    agent_log = "".join(p.read_text() for p in files if "agents" in str(p))
    assert "failed while holding ***" in agent_log  # the failure was logged, masked by hive-agent


def test_json_log_format(hived_factory) -> None:  # type: ignore[no-untyped-def]
    hived: Hived = hived_factory(extra_args=["--log-format", "json", "--access-log"])
    hived.api("GET", "/status")
    hived.stop()
    lines = [line for line in hived.log().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert any(e["logger"] == "uvicorn.access" and "/status" in e["message"] for e in entries)
    assert any(
        e.get("method") == "GET" and e.get("path") == "/status" and e.get("status") == 200 for e in entries
    )
    assert any(e["logger"] == "hived" and "ready" in e["message"] for e in entries)


def test_secret_env_must_name_env_keys(hived: Hived) -> None:
    resp = hived.client.post(
        "/agents", json={"name": "x", "handler": {"python": "m:f"}, "env": {"A": "b"}, "secret_env": ["B"]}
    )
    assert resp.status_code == 422 and "secret_env: 'B' is not a key of env" in resp.json()["detail"]
