"""The TCP listener: tokens and scopes against every route family (a table), no, wrong and revoked
tokens, an agent token confined to its agent, Host and Origin checks, TLS, and the body limit."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_cli_offline import hivectl
from tests.helpers import Hived, wait_for


def free_port() -> int:
    """A port free now, for hived to listen on. Taken below the kernel's ephemeral range: a port from
    bind(0) is one that an outgoing connection (another test's, in parallel) may be given meanwhile."""
    for _ in range(100):
        port = random.randrange(20000, 32768)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 20000-32767")


@pytest.fixture
def tcp(hived_factory: Any, tmp_path: Path) -> tuple[Hived, str]:
    port = free_port()
    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\nmax_request_bytes: 64KiB\n")
    hived = hived_factory(extra_args=["--listen", f"127.0.0.1:{port}", "--config", str(config)])
    return hived, f"http://127.0.0.1:{port}"


def token(hived: Hived, scope: str, agent: str | None = None) -> str:
    body = {"scope": scope, **({"agent": agent} if agent else {})}
    return str(hived.api("POST", "/tokens", json=body)["token"])


# (method, path, body): one request of each route family; {run} and {agent} are filled in.
FAMILIES = [
    ("GET", "/status", None),
    ("GET", "/agents", None),
    ("GET", "/tasks", None),
    ("GET", "/events?follow=false", None),
    ("GET", "/metrics", None),
    ("POST", "/tasks", {"type": "t", "requires": ["nobody"]}),
    ("POST", "/workflows", {"name": "w", "steps": [{"id": "a", "type": "approval"}]}),
    ("POST", "/workflows/w/execute", {}),
    ("POST", "/agents/{agent}/restart", None),
    ("POST", "/agents", {"name": "new-one", "handler": {"python": "hivectl.agent.builtin:echo"}}),
    ("POST", "/tokens", {"scope": "read"}),
    ("GET", "/runs/{run}/context", None),
    ("POST", "/agents/{agent}/heartbeat", {"incarnation": 1}),
]
# which scopes may (403 for the others)
ALLOWED = {
    "GET /status": {"read", "operator", "admin"},
    "GET /agents": {"read", "operator", "admin"},
    "GET /tasks": {"read", "operator", "admin"},
    "GET /events?follow=false": {"read", "operator", "admin"},
    "GET /metrics": {"read", "operator", "admin"},
    "POST /tasks": {"operator", "admin"},
    "POST /workflows": {"operator", "admin"},
    "POST /workflows/w/execute": {"operator", "admin"},
    "POST /agents/{agent}/restart": {"operator", "admin"},
    "POST /agents": {"admin"},
    "POST /tokens": {"admin"},
    "GET /runs/{run}/context": {"read", "operator", "admin"},  # agents: only runs they hold tasks of
    "POST /agents/{agent}/heartbeat": {"agent", "admin"},
}


def test_each_scope_against_each_route_family(tcp: tuple[Hived, str]) -> None:
    hived, url = tcp
    agent = hived.spawn("worker", {"python": "hivectl.agent.builtin:echo"})
    hived.api("POST", "/workflows", json={"name": "w", "steps": [{"id": "a", "type": "approval"}]})
    run = hived.api("POST", "/workflows/w/execute", json={})
    tokens = {
        s: token(hived, s, "worker" if s == "agent" else None) for s in ("read", "operator", "admin", "agent")
    }
    with httpx.Client(base_url=url, timeout=30) as client:
        for method, path, body in FAMILIES:
            key = f"{method} {path}"
            real = path.replace("{agent}", agent["id"]).replace("{run}", run["id"])
            for scope, secret in tokens.items():
                resp = client.request(method, real, json=body, headers={"Authorization": f"Bearer {secret}"})
                if scope in ALLOWED[key]:
                    assert resp.status_code not in (401, 403), (scope, key, resp.text)
                else:
                    assert resp.status_code == 403, (scope, key, resp.status_code, resp.text)
                    detail = resp.json()["detail"]
                    assert f"scope {scope} cannot" in detail or "holds no task of run" in detail, detail


def test_no_wrong_and_revoked_tokens(tcp: tuple[Hived, str]) -> None:
    hived, url = tcp
    good = token(hived, "read")
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/status").status_code == 401
        assert client.get("/status").headers["www-authenticate"] == "Bearer"
        assert client.get("/status", headers={"Authorization": "Bearer hive_not-a-token"}).status_code == 401
        assert client.get("/status", headers={"Authorization": f"Basic {good}"}).status_code == 401
        assert client.get("/status", headers={"Authorization": f"Bearer {good}"}).status_code == 200
        token_id = next(t["id"] for t in hived.api("GET", "/tokens") if t["scope"] == "read")
        hived.api("DELETE", f"/tokens/{token_id[:8]}")
        assert client.get("/status", headers={"Authorization": f"Bearer {good}"}).status_code == 401
    listed = hived.api("GET", "/tokens")
    assert listed[0]["revoked_at"] and all("token" not in t and "digest" not in t for t in listed)
    hived.stop()
    assert good not in hived.log() and "hive_not-a-token" not in hived.log()  # never logged


def test_an_agent_token_acts_only_as_its_agent(tcp: tuple[Hived, str]) -> None:
    hived, url = tcp
    mine = hived.spawn("mine", {"python": "hivectl.agent.builtin:echo"})
    other = hived.spawn("other", {"python": "hivectl.agent.builtin:echo"})
    secret = token(hived, "agent", "mine")
    auth = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        assert (
            client.post(f"/agents/{other['id']}/heartbeat", json={"incarnation": 1}, headers=auth).status_code
            == 403
        )
        resp = client.post(f"/agents/{mine['id']}/heartbeat", json={"incarnation": 1}, headers=auth)
        assert resp.status_code not in (401, 403), resp.text
        spec = {"name": "intruder", "handler": {"python": "m:f"}}
        refused = client.post(
            "/agents/register", json={"spec": spec, "pid": 1, "hostname": "h"}, headers=auth
        )
        assert refused.status_code == 403 and "only agent 'mine'" in refused.json()["detail"]
        assert client.post("/tasks/00000000/complete", json={}, headers=auth).status_code == 403


def test_an_agent_token_reaches_only_the_context_of_runs_it_works_for(tcp: tuple[Hived, str]) -> None:
    hived, url = tcp
    hived.spawn("slow", {"python": "hivectl.agent.builtin:act"}, capabilities=["slow"])
    hived.spawn("idle", {"python": "hivectl.agent.builtin:echo"})
    step = {"id": "a", "type": "act", "requires": ["slow"], "payload": {"sleep": 60}}
    hived.api("POST", "/workflows", json={"name": "long", "steps": [step]})
    run = hived.api("POST", "/workflows/long/execute", json={})["id"]
    wait_for(lambda: hived.api("GET", f"/runs/{run}")["steps"][0]["status"] == "running", what="step running")
    worker = {"Authorization": f"Bearer {token(hived, 'agent', 'slow')}"}
    bystander = {"Authorization": f"Bearer {token(hived, 'agent', 'idle')}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        put = client.put(f"/runs/{run}/context/k", json={"value": 1}, headers=worker)
        assert put.status_code == 200, put.text
        assert client.get(f"/runs/{run}/context/k", headers=worker).json()["value"] == 1
        for method, path in (("GET", f"/runs/{run}/context"), ("PUT", f"/runs/{run}/context/k")):
            refused = client.request(method, path, json={"value": 2}, headers=bystander)
            assert refused.status_code == 403 and "holds no task of run" in refused.json()["detail"]
        assert client.get(f"/runs/{run[:8]}/context", headers=worker).status_code == 403  # full ids only
        hived.api("POST", f"/runs/{run}/cancel")
        wait_for(  # once its task is over, not any more
            lambda: client.get(f"/runs/{run}/context", headers=worker).status_code == 403,
            what="the worker's access ended with its task",
        )


def test_host_and_origin_are_checked(tcp: tuple[Hived, str]) -> None:
    hived, url = tcp
    auth = {"Authorization": f"Bearer {token(hived, 'read')}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        rebinding = client.get("/status", headers={**auth, "Host": "evil.example:80"})
        assert rebinding.status_code == 403 and "Host 'evil.example'" in rebinding.json()["detail"]
        cross = client.get("/status", headers={**auth, "Origin": "https://evil.example"})
        assert cross.status_code == 403 and "cross-site" in cross.json()["detail"]
        assert client.get("/status", headers={**auth, "Host": "localhost"}).status_code == 200


def test_the_socket_needs_no_token_and_limits_bodies(tcp: tuple[Hived, str]) -> None:
    hived, _ = tcp
    assert hived.api("GET", "/status")["version"]
    big = hived.client.post("/tasks", json={"type": "t", "payload": {"blob": "x" * 70_000}})
    assert big.status_code == 413 and "max_request_bytes" in big.json()["detail"]
    chunked = hived.client.post(
        "/tasks",
        content=iter([b'{"type": "t", "payload": {"b": "', b"x" * 70_000, b'"}}']),
        headers={"content-type": "application/json"},
    )
    assert chunked.status_code == 413
    assert hived.api("GET", "/tasks")["total"] == 0  # nothing was accepted


def test_hivectl_tokens_and_url(tcp: tuple[Hived, str]) -> None:
    hived, url = tcp
    env = dict(hived.env)
    made = hivectl("token", "create", "--scope", "read", "--name", "dashboard", env=env)
    assert made.returncode == 0 and made.stdout.startswith("hive_")
    secret = made.stdout.strip()
    remote = {k: v for k, v in env.items() if k != "HIVE_SOCKET"} | {"HIVE_URL": url, "HIVE_TOKEN": secret}
    assert hivectl("status", env=remote).returncode == 0
    refused = hivectl("task", "submit", "t", env=remote)
    assert refused.returncode == 4 and "scope read cannot" in refused.stderr
    bad = hivectl("status", env=remote | {"HIVE_TOKEN": "hive_wrong"})
    assert bad.returncode == 4
    listed = hivectl("token", "list", env=env)
    assert "dashboard" in listed.stdout and secret not in listed.stdout


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls_listener(hived_factory: Any, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    hived = hived_factory(
        extra_args=["--listen", f"127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key", str(key)]
    )
    secret = token(hived, "read")
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=str(cert), timeout=30) as client:
        resp = wait_for(
            lambda: client.get("/status", headers={"Authorization": f"Bearer {secret}"}), what="TLS"
        )
        assert resp.status_code == 200
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as plain,
        pytest.raises(httpx.HTTPError),
    ):
        plain.get("/status")  # no plain HTTP on a TLS listener


def test_a_remote_hive_agent_over_tcp_with_a_token_file(tcp: tuple[Hived, str], tmp_path: Path) -> None:
    """hive-agent started by hand elsewhere: --url and --token-file, its own agent token."""
    import sys

    hived, url = tcp
    token_file = tmp_path / "agent.token"
    token_file.write_text(token(hived, "agent", "remote-1") + "\n")
    log = tmp_path / "agent.log"
    command = [
        sys.executable,
        "-m",
        "hivectl.agent.main",
        "--url",
        url,
        "--token-file",
        str(token_file),
        "--name",
        "remote-1",
        "--cap",
        "far",
        "--python",
        "hivectl.agent.builtin:echo",
    ]
    with (
        open(log, "wb") as out,
        subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out) as agent,
    ):
        try:
            wait_for(
                lambda: hived.api("GET", "/agents", params={"type": "remote-1"})["items"],
                timeout=30,
                what=f"the remote agent registered ({log})",
            )
            task = hived.submit("hello", payload={"over": "tcp"}, requires=["far"])
            done = hived.wait_task(task["id"])
            assert done["status"] == "completed" and done["result"] == {"over": "tcp"}
        finally:
            agent.terminate()
            agent.wait(30)
    assert "registered as remote-1" in log.read_text()
