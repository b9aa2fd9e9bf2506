"""Item 10 of the hardening issue, with real hived and real agents: the gaps in secret redaction. A
`secret_env` value used as a result key or written into a run context, a value too short to mask, an
API token printed by a handler after hived restarted, and hived's own environment (HIVE_DB with its
password, HIVE_TOKEN) handed to every handler."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.helpers import REPO, Hived

CANARY = "canary-7c41d09be2a35f68"
RESULT_KEY = """
import json, os
key = os.environ["API_KEY"]
print(json.dumps({key: 1, "nested": [{key: key}], "prefix-" + key: "x"}))
"""
CONTEXT_WRITER = f"""
import json, os, sys
sys.path.insert(0, {str(REPO / "workflows-examples" / "agents")!r})
from hive_api import context_path, request
key = os.environ["API_KEY"]
status, body = request("PUT", context_path("notes"), {{"value": {{"token": key, key: [key]}}}})
assert status == 200, (status, body)
status, body = request("PUT", context_path("line"), {{"value": "the key is " + key}})
assert status == 200, (status, body)
status, body = request("PUT", context_path("k-" + key), {{"value": 1}})
print(json.dumps({{"refused": status}}))
"""
PRINTER = """
import json, sys
payload = json.load(sys.stdin)
token = open(payload["token_file"]).read().strip()
print("using token", token, file=sys.stderr)
if payload.get("fail"):
    sys.exit("refused with token " + token)
print(json.dumps({"token": token, token: "as a key"}))
"""
ENV_DUMP = """
import json, os
print(json.dumps({"env": sorted(os.environ.items())}))
"""


def holder(hived: Hived, tmp_path: Path, name: str, script: str, **spec: object) -> None:
    path = tmp_path / f"{name}.py"
    path.write_text(script)
    env = {"API_KEY": CANARY, **spec.pop("env", {})}  # type: ignore[dict-item]
    hived.spawn(name, {"exec": [sys.executable, str(path)]}, env=env, secret_env=["API_KEY"], **spec)


def everything(hived: Hived, *task_ids: str) -> str:
    parts = [json.dumps(hived.task(t)) + str(hived.api("GET", f"/tasks/{t}/logs")) for t in task_ids]
    parts.append(str(hived.api("GET", "/events", params={"follow": "false"})))
    return "\n".join(parts)


def test_item10_secret_as_a_result_key_is_masked(hived: Hived, tmp_path: Path) -> None:
    holder(hived, tmp_path, "keyed", RESULT_KEY)
    done = hived.wait_task(hived.submit("t", max_attempts=1)["id"])
    assert done["status"] == "completed", done
    assert done["result"] == {"***": 1, "nested": [{"***": "***"}], "prefix-***": "x"}
    assert CANARY not in everything(hived, done["id"])


def test_item10_secret_written_into_the_run_context_is_masked(hived: Hived, tmp_path: Path) -> None:
    holder(hived, tmp_path, "writer", CONTEXT_WRITER)
    hived.api("POST", "/workflows", json={"name": "ctx", "steps": [{"id": "w", "type": "t"}]})
    run_id = hived.api("POST", "/workflows/ctx/execute", json={"params": {}})["id"]
    from tests.integration.test_workflows import wait_run

    run = wait_run(hived, run_id)
    assert run["status"] == "succeeded", run
    assert run["steps"][0]["result"] == {"refused": 422}  # a key holding a secret is not stored
    entries = {e["key"]: e["value"] for e in hived.api("GET", f"/runs/{run_id}/context")}
    assert entries == {"notes": {"token": "***", "***": ["***"]}, "line": "the key is ***"}
    assert CANARY not in json.dumps(hived.api("GET", f"/runs/{run_id}/context/notes"))
    assert CANARY not in everything(hived, run["steps"][0]["task_id"]) + hived.log()


def test_item10_short_secret_env_value_is_refused(hived: Hived) -> None:
    body = {"name": "short", "handler": {"python": "m:f"}, "env": {"PIN": "123"}, "secret_env": ["PIN"]}
    resp = hived.client.post("/agents", json=body)
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert "secret_env: 'PIN'" in detail and "at least 4 characters" in detail and "123" not in detail
    body["env"] = {"PIN": "1234"}
    assert hived.client.post("/agents", json=body).status_code in (200, 201)


def test_item10_api_token_printed_by_a_handler_is_masked_after_a_restart(
    hived_factory,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    hived: Hived = hived_factory()
    token = hived.api("POST", "/tokens", json={"scope": "read", "name": "ci"})["token"]
    hived.stop()
    hived.start()  # hived keeps only the token's digest: it can no longer remember the value
    path, token_file = tmp_path / "printer.py", tmp_path / "token"
    path.write_text(PRINTER)
    token_file.write_text(token)
    hived.spawn("printer", {"exec": [sys.executable, str(path)]})
    done = hived.wait_task(hived.submit("t", payload={"token_file": str(token_file)}, max_attempts=1)["id"])
    assert done["status"] == "completed", done
    assert done["result"] == {"token": "***", "***": "as a key"}
    logs = hived.api("GET", f"/tasks/{done['id']}/logs")
    assert "using token ***" in logs and token not in logs
    failed = hived.wait_task(
        hived.submit("t", payload={"token_file": str(token_file), "fail": True}, max_attempts=1)["id"]
    )
    assert failed["status"] == "failed" and failed["error"].endswith("refused with token ***"), failed
    assert token not in everything(hived, done["id"], failed["id"]) + hived.api("GET", "/agents/printer/logs")
    hived.stop()
    agent_logs = [p.read_text() for p in hived.state_dir.rglob("*.log")]
    assert "refused with token ***" in "".join(agent_logs)  # hive-agent's own log masks it too
    assert not [text[:200] for text in agent_logs if token in text]


def test_item10_handlers_do_not_get_hiveds_own_environment(
    hived_factory,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    db_password = "pw-51d3a0c9e8"
    hived: Hived = hived_factory(
        env={
            "HIVE_TOKEN": "hive_" + "T" * 43,
            "HIVE_EXTRA_URL": f"postgresql://hive:{db_password}@db.invalid/hive",
            "DB_PASSWORD": db_password,
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
        }
    )
    holder(hived, tmp_path, "envy", ENV_DUMP, env={"OWN": "agent-value"})
    done = hived.wait_task(hived.submit("t", max_attempts=1)["id"])
    env = dict(done["result"]["env"])
    assert env["OWN"] == "agent-value" and env["API_KEY"] == "***"  # masked in the result, but given
    assert {"PATH", "HOME", "HIVE_SOCKET", "HIVE_AGENT_ID", "HIVE_TASK_ID"} <= set(env)
    assert env["LC_ALL"] == "C.UTF-8" and env["TZ"] == "UTC"
    assert not {"HIVE_TOKEN", "HIVE_EXTRA_URL", "DB_PASSWORD", "HIVE_STATE_DIR"} & set(env)
    assert not any(db_password in value for value in env.values())
