"""Hardening, the input items (issue "Hardening", items 3, 4, 5, 16 and 20): values that used to be
accepted and then broke hived (500s on every later read, a task wedged in `running`) or were silently
changed are refused at the door with 422 naming the field, and nothing is stored."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.helpers import Hived

RAW = {"content-type": "application/json"}


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        value = {"n": value}
    return value


def refused(resp: Any, *words: str) -> str:
    assert resp.status_code == 422, f"{resp.status_code} {resp.text}"
    detail = resp.json()["detail"]
    for word in words:
        assert word in detail, detail
    return str(detail)


def test_item_3_a_batch_refused_with_409_keeps_nothing(hived: Hived) -> None:
    hived.submit("t", payload={"v": 1}, idempotency_key="k1")
    batch = hived.client.post(
        "/tasks/batch",
        json={
            "tasks": [
                {"type": "t", "payload": {"a": 1}},
                {"type": "t", "payload": {"b": 2}},
                {"type": "t", "payload": {"v": 2}, "idempotency_key": "k1"},  # same key, other payload
            ]
        },
    )
    assert batch.status_code == 409, batch.text
    assert hived.api("GET", "/tasks")["total"] == 1  # the two plain tasks were not kept
    same = hived.api(
        "POST",
        "/tasks/batch",
        json={"tasks": [{"type": "t", "payload": {"v": 1}, "idempotency_key": "k1"}, {"type": "t"}]},
    )
    assert [t["payload"] for t in same["items"]] == [{"v": 1}, {}]
    assert hived.api("GET", "/tasks")["total"] == 2  # the keyed one is the task already there
    twice = hived.client.post(
        "/tasks/batch",
        json={"tasks": [{"type": "t", "idempotency_key": "k2"}, {"type": "t", "idempotency_key": "k2"}]},
    )
    refused(twice, "idempotency_key 'k2' is given twice")


def test_item_4_deeply_nested_json_is_refused_before_it_is_stored(hived: Hived) -> None:
    refused(hived.client.post("/tasks", json={"type": "t", "payload": deep(300)}), "payload", "64 levels")
    assert hived.client.post("/tasks", json={"type": "t", "payload": deep(60)}).status_code == 201
    workflow = {"name": "p", "params": {"l": None}, "steps": [{"id": "a", "type": "t"}]}
    hived.api("POST", "/workflows", json=workflow)
    resp = hived.client.post("/workflows/p/execute", json={"params": {"l": deep(300)}})
    refused(resp, "params", "64 levels")
    assert hived.api("GET", "/tasks")["total"] == 1  # lists, shows and cancels keep working
    assert hived.api("GET", "/runs")["total"] == 0


def test_item_4_a_deep_result_fails_the_attempt(hived: Hived) -> None:
    script = "print('{\"a\":' * 70 + '1' + '}' * 70)"
    hived.spawn("deep", {"exec": [sys.executable, "-c", script]})
    task = hived.submit("t", max_attempts=1)
    done = hived.wait_task(task["id"])
    assert done["status"] == "failed" and "64 levels" in done["error"]
    attempt = hived.task(task["id"])["attempt_history"][0]
    assert attempt["reason"] == "result_invalid"
    assert hived.api("GET", "/tasks")["total"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "t", "retry": {"initial": 1e308, "max": 1e308}}, "retry.initial"),
        ({"type": "t", "retry": {"max": "100000d"}}, "retry.max"),
        ({"type": "t", "timeout": 1e308}, "timeout"),
    ],
)
def test_item_5_durations_are_bounded_at_the_schema(hived: Hived, body: dict[str, Any], field: str) -> None:
    refused(hived.client.post("/tasks", json=body), field, "longer than hived takes")
    assert hived.api("GET", "/tasks")["total"] == 0


def test_item_16_workflow_timeout_1e308_is_refused_at_apply(hived: Hived) -> None:
    resp = hived.client.post(
        "/workflows", json={"name": "w", "timeout": 1e308, "steps": [{"id": "a", "type": "t"}]}
    )
    refused(resp, "timeout")
    assert hived.api("GET", "/workflows")["items"] == []


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"type": "t", "payload": {"s": "\\ud800"}}', ("payload: s:", "lone surrogate")),
        (b'{"type": "t", "payload": {"s": "a\\u0000b"}}', ("payload: s:", "NUL")),
        (b'{"type": "t", "payload": {"\\u0000": 1}}', ("payload", "NUL")),
        (b'{"type": "t", "payload": {"x": NaN}}', ("payload: x:", "not a JSON number")),
        (b'{"type": "t", "payload": {"x": [Infinity]}}', ("payload: x[0]:", "not a JSON number")),
        (b'{"type": "t", "idempotency_key": "k\\ud800"}', ("idempotency_key", "surrogate")),
    ],
)
def test_items_16_and_20_text_and_numbers_hived_cannot_store(hived: Hived, raw: bytes, words: Any) -> None:
    refused(hived.client.post("/tasks", content=raw, headers=RAW), *words)
    assert hived.api("GET", "/tasks")["total"] == 0


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/tasks", {"offset": 2**63}),
        ("/runs", {"offset": 2**64}),
        ("/agents", {"offset": 2**63}),
        ("/workflows/w", {"version": 2**70}),
        ("/events", {"since": 2**63, "follow": "false"}),
    ],
)
def test_item_16_huge_numbers_in_queries_are_422(hived: Hived, path: str, params: dict[str, Any]) -> None:
    resp = hived.client.get(path, params=params)
    assert resp.status_code == 422, resp.text


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"type": "t", "priority": True}, ("priority",)),
        ({"type": "t", "priority": "5"}, ("priority",)),
        ({"type": "t", "requires": [""]}, ("requires", "capability")),
        ({"type": "t", "requires": ["has space"]}, ("requires",)),
        ({"type": "t", "requires": [f"c{i}" for i in range(65)]}, ("requires", "at most 64")),
    ],
)
def test_item_20_lenient_task_fields(hived: Hived, body: dict[str, Any], words: Any) -> None:
    refused(hived.client.post("/tasks", json=body), *words)
    assert hived.api("GET", "/tasks")["total"] == 0


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"env": {"A=B": "x"}}, ("env", "variable name")),
        ({"env": {"A\u0000": "x"}}, ("env",)),
        ({"env": {"A": "x\u0000y"}}, ("env", "NUL")),
        ({"workdir": "/tmp/a\u0000b"}, ("workdir", "NUL")),
        ({"capabilities": [""]}, ("capabilities",)),
    ],
)
def test_item_20_agent_specs_that_would_crash_loop(hived: Hived, extra: dict[str, Any], words: Any) -> None:
    body = {"name": "a", "handler": {"python": "hivectl.agent.builtin:echo"}, **extra}
    refused(hived.client.post("/agents", json=body), *words)
    assert hived.api("GET", "/agents")["total"] == 0


def test_item_6_a_page_of_tasks_is_bounded_in_bytes(hived_factory: Any, tmp_path: Any) -> None:
    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\nmax_page_bytes: 64KiB\n")
    daemon: Hived = hived_factory(extra_args=["--config", str(config)])
    ids = [daemon.submit("t", payload={"blob": f"{i}" * 30_000})["id"] for i in range(5)]
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = daemon.api("GET", "/tasks", params={"limit": 5, "offset": offset})
        assert page["total"] == 5 and 1 <= len(page["items"]) <= 2  # 3 x 30 kB would be over 64 KiB
        seen += [t["id"] for t in page["items"]]
        offset = page["next_offset"]
    assert seen == ids[::-1]  # newest first, none lost or repeated across the short pages
    one = daemon.submit("t", payload={"blob": "x" * 100_000})  # larger than a page: still shown alone
    assert [t["id"] for t in daemon.api("GET", "/tasks", params={"limit": 3})["items"]] == [one["id"]]
