"""POST /tasks, POST /agents/{id}/work and GET /tasks/{ref} answer alike through the lean routes
(hived/http/lean.py) and through FastAPI's: the same status and the same body, for good input and
bad."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hived.bounds import Limits
from hived.http.app import TcpGate, create_app
from hived.model.schemas import AgentSpec
from hived.orchestrator import AgentOrchestrator

VOLATILE = {"id", "created_at", "started_at", "completed_at", "agent_id", "attempts", "status"}
SUBMITS: list[Any] = [
    {"type": "t", "payload": {"n": 1}, "priority": 7, "requires": ["gpu"], "idempotency_key": "k1"},
    {"type": "t", "payload": {"n": 1}, "priority": 7, "requires": ["gpu"], "idempotency_key": "k1"},  # again
    {"type": "t", "payload": {"n": 2}, "idempotency_key": "k1"},  # the key with another payload: 409
    {"type": "t", "priority": 11},
    {"type": "t", "priority": "5"},
    {"type": ""},
    {"payload": {}},
    {"type": "t", "payload": [1]},
    {"type": "t", "timeout": 1e308},
    [1, 2],
    "not an object",
]
RAW = [
    b"\xff\xfe{\x05",
    b'{"type": "t", "payload": {"s": "\\ud800"}}',
    b"",
    b"{",
    b'{"type": "t",}',
    b"nul",
    b'{"type": "t", "payload": ' + b"[" * 70 + b"]" * 70 + b"}",
]
WORK = [
    ("nobody", {"incarnation": 1, "slots": 1, "wait": 0}),
    ("nobody", {"incarnation": "x", "slots": 1}),
    ("nobody", {"slots": 1}),
    ("nobody", {"incarnation": 1, "slots": -1}),
]
WAITS = ["", "wait=0", "wait=0.01", "wait=abc", "wait=-1", "wait=61", "wait=", "wait=abc&wait=0.01", "x=1"]


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    orch = AgentOrchestrator(f"sqlite:///{tmp_path}/hive.db", tmp_path / "state")
    await orch.start()
    apps = [create_app(orch, manage_lifecycle=False, lean=lean) for lean in (True, False)]
    pair = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") for app in apps]
    try:
        yield pair[0], pair[1]
    finally:
        for client in pair:
            await client.aclose()
        await orch.shutdown()


def shown(resp: httpx.Response) -> tuple[int, Any]:
    body = resp.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in VOLATILE}
    return resp.status_code, body


async def test_the_lean_routes_answer_as_fastapi_does(clients: tuple[httpx.AsyncClient, ...]) -> None:
    lean, full = clients
    for n, body in enumerate(SUBMITS):  # a key: the second answer is the task the first made
        assert shown(await lean.post("/tasks", json=body)) == shown(await full.post("/tasks", json=body)), n
    for query in WAITS:  # POST /tasks?wait=: the task once it has ended (none here: nobody runs it)
        for body in ({"type": "t", "requires": ["nobody-has-it"]}, {"type": ""}, {"payload": []}):
            a, b = (
                await lean.post(f"/tasks?{query}", json=body),
                await full.post(f"/tasks?{query}", json=body),
            )
            assert shown(a) == shown(b), (query, body)
        raw = {"content": b"{", "headers": {"content-type": "application/json"}}
        a, b = await lean.post(f"/tasks?{query}", **raw), await full.post(f"/tasks?{query}", **raw)
        assert shown(a) == shown(b), query
    for raw in RAW:
        headers = {"content-type": "application/json"}
        assert shown(await lean.post("/tasks", content=raw, headers=headers)) == shown(
            await full.post("/tasks", content=raw, headers=headers)
        ), raw[:40]
    for agent, body in WORK:
        path = f"/agents/{agent}/work"
        assert shown(await lean.post(path, json=body)) == shown(await full.post(path, json=body)), body
    task = (await full.post("/tasks", json={"type": "t", "requires": ["nobody-has-it"]})).json()
    for ref in (task["id"], task["id"][:8], "no-such-task"):
        for query in WAITS:
            path = f"/tasks/{ref}?{query}"
            a, b = await lean.get(path), await full.get(path)
            assert (a.status_code, a.json()) == (b.status_code, b.json()), path
    assert (await lean.get(f"/tasks/{task['id']}?wait=abc")).json() == {
        "detail": "wait: Input should be a valid number, unable to parse string as a number"
    }


async def test_the_lean_routes_keep_the_gates_errors_and_headers(tmp_path: Path) -> None:
    """Behind the TCP listener's gate (tokens, Host), with the body limit, the metrics and an
    unexpected error: the lean routes answer as FastAPI's do, headers included."""
    orch = AgentOrchestrator(
        f"sqlite:///{tmp_path}/hive.db", tmp_path / "state", limits=Limits(max_request_bytes=2000)
    )
    await orch.start()
    gate = TcpGate(allowed_hosts=frozenset({"h"}))
    apps = [create_app(orch, manage_lifecycle=False, tcp=gate, lean=lean) for lean in (True, False)]
    lean, full = (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://h"
        )
        for app in apps
    )
    try:
        _, operator = await orch.tokens.create("operator", None, "op")
        _, reader = await orch.tokens.create("read", None, "r")
        agent = await orch.agents.create(AgentSpec(name="w", capabilities=["x"]), kind="external")
        _, agent_token = await orch.tokens.create("agent", "w", "w")
        work = {"incarnation": 0, "slots": 0, "wait": 0}
        cases: list[tuple[str, dict[str, Any], dict[str, str]]] = [
            ("/tasks", {"json": {"type": "t"}}, {}),  # no token: 401
            ("/tasks", {"json": {"type": "t"}}, {"authorization": f"Bearer {reader}"}),  # scope: 403
            ("/tasks", {"json": {"type": "t"}}, {"authorization": f"Bearer {operator}", "host": "evil"}),
            ("/tasks", {"json": {"type": "t"}}, {"authorization": f"Bearer {operator}"}),  # 201
            (
                "/tasks",
                {"json": {"type": "t", "payload": {"s": "x" * 3000}}},
                {"authorization": f"Bearer {operator}"},
            ),
            ("/agents/other/work", {"json": work}, {"authorization": f"Bearer {agent_token}"}),  # not its own
            (f"/agents/{agent.id}/work", {"json": work}, {"authorization": f"Bearer {agent_token}"}),
        ]
        for path, body, headers in cases:
            a, b = (
                await lean.post(path, headers=headers, **body),
                await full.post(path, headers=headers, **body),
            )
            assert shown(a) == shown(b), (path, headers)
            assert a.headers.get("content-type") == b.headers.get("content-type"), path
            assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate"), path
        codes = {shown(await lean.post(p, headers=h, **b))[0] for p, b, h in cases}
        assert codes == {401, 403, 413, 201, 200}
        made = (
            await full.post("/tasks", json={"type": "t"}, headers={"authorization": f"Bearer {operator}"})
        ).json()
        reads = [
            {},
            {"authorization": f"Bearer {reader}"},
            {"authorization": f"Bearer {reader}", "host": "evil"},
            {"authorization": f"Bearer {agent_token}"},  # an agent reads the tasks it was given
        ]
        for headers in reads:
            for path in (f"/tasks/{made['id']}?wait=0", "/tasks/no-such-task"):
                a, b = await lean.get(path, headers=headers), await full.get(path, headers=headers)
                assert shown(a) == shown(b), (path, headers)
                assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate"), path

        async def broken(_task: Any) -> None:
            raise RuntimeError("a bug")

        orch.tasks.submit = broken  # type: ignore[method-assign]
        auth = {"authorization": f"Bearer {operator}"}
        a, b = (
            await lean.post("/tasks", json={"type": "t"}, headers=auth),
            await full.post("/tasks", json={"type": "t"}, headers=auth),
        )
        assert (a.status_code, a.text) == (b.status_code, b.text) == (500, "Internal Server Error")
    finally:
        for client in (lean, full):
            await client.aclose()
        await orch.shutdown()
