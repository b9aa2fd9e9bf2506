"""/metrics parsed by prometheus-client's own parser, /readyz, and /events resumption."""

from __future__ import annotations

import sys

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import Hived, wait_for


def samples(hived: Hived) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = hived.api("GET", "/metrics")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_move_as_tasks_run(hived: Hived) -> None:
    before = samples(hived)
    assert before[("hive_tasks_submitted_total", ())] == 0
    hived.spawn("m", {"python": "hivectl.agent.builtin:echo"})
    ids = [hived.submit("t", priority=7)["id"] for _ in range(5)]
    waiting = hived.submit("t", requires=["nobody"], priority=2)
    for task_id in ids:
        hived.wait_task(task_id)
    after = samples(hived)
    assert after[("hive_tasks_submitted_total", ())] == 6
    assert after[("hive_task_attempts_total", (("outcome", "completed"), ("reason", "")))] == 5
    assert after[("hive_task_run_seconds_count", (("outcome", "completed"),))] == 5
    assert after[("hive_queue_depth", (("priority", "2"), ("state", "pending")))] == 1
    assert after[("hive_agents", (("status", "active"),))] == 1
    assert after[("hive_api_request_duration_seconds_count", (("method", "POST"), ("route", "/tasks")))] >= 6
    assert hived.task(waiting["id"])["status"] == "pending"


THROTTLING = """
import json, os, sys
payload = json.load(sys.stdin)
if payload.get("throttle") and os.environ["HIVE_ATTEMPT"] == "1":
    print(json.dumps({"throttled": {"limit": "api", "retry_after": 0.5}}))
    sys.exit(75)
print("{}")
"""


def test_limit_and_scheduled_metrics_move(hived: Hived) -> None:
    hived.api("PUT", "/limits/slow", json={"name": "slow", "rate": "1/h"})  # one token, then one an hour
    hived.api("PUT", "/limits/api", json={"name": "api", "rate": "100/s"})
    before = samples(hived)
    assert before[("hive_limit_tokens", (("limit", "slow"),))] == 1
    assert before[("hive_limit_waiting", (("limit", "slow"),))] == 0
    assert ("hive_limit_throttles_total", (("limit", "api"),)) not in before
    hived.spawn("w", {"exec": [sys.executable, "-c", THROTTLING]}, max_concurrency=2)
    first, second = (hived.submit("t", limits=[{"name": "slow"}]) for _ in range(2))
    hived.wait_task(first["id"])
    throttled = hived.submit("t", payload={"throttle": True}, limits=[{"name": "api"}])
    later = hived.submit("t", delay=3600, priority=3)
    assert hived.wait_task(throttled["id"])["status"] == "completed"
    after = wait_for(
        lambda: (s := samples(hived)).get(("hive_limit_throttles_total", (("limit", "api"),))) and s,
        what="the throttle counted",
    )
    assert after[("hive_limit_throttles_total", (("limit", "api"),))] == 1
    assert after[("hive_limit_tokens", (("limit", "slow"),))] < 0.01
    assert after[("hive_limit_waiting", (("limit", "slow"),))] == 1
    assert after[("hive_limit_holders", (("limit", "slow"),))] == 0
    assert after[("hive_queue_depth", (("priority", "3"), ("state", "scheduled")))] == 1
    assert hived.task(second["id"])["waiting_reason"] == "limit slow"
    hived.api("PUT", f"/tasks/{later['id']}/cancel")
    assert ("hive_queue_depth", (("priority", "3"), ("state", "scheduled"))) not in samples(hived)


def test_readyz(hived: Hived) -> None:
    assert hived.api("GET", "/readyz")["status"] == "ready"


def parse_sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if fields:
            events.append(fields)
    return events


def test_events_resume_after_last_event_id(hived: Hived) -> None:
    hived.spawn("ev", {"python": "hivectl.agent.builtin:echo"})
    first = hived.submit("t")
    hived.wait_task(first["id"])
    backlog = parse_sse(hived.client.get("/events", params={"follow": "false"}).text)
    kinds = [e["event"] for e in backlog]
    assert "agent.status" in kinds and "task.submitted" in kinds and "task.completed" in kinds
    last = int(backlog[-1]["id"])
    second = hived.submit("t")
    hived.wait_task(second["id"])
    resumed = wait_for(
        lambda: parse_sse(
            hived.client.get("/events", params={"follow": "false"}, headers={"Last-Event-ID": str(last)}).text
        ),
        what="new events",
    )
    assert all(int(e["id"]) > last for e in resumed)
    assert any(e["event"] == "task.completed" and second["id"] in e["data"] for e in resumed)
    assert not any(first["id"] in e["data"] for e in resumed)
