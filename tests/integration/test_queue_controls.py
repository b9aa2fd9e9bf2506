"""The queue controls are durable: scheduled tasks, expiries, pauses and cordons outlive a restart of
the real hived (SQLite and PostgreSQL), including a `kill -9`."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from tests.helpers import Hived, wait_for

ECHO = {"python": "hivectl.agent.builtin:echo"}


def test_scheduled_tasks_and_expiries_survive_a_restart(
    hived_factory: Callable[..., Hived], db_url: str
) -> None:
    hived = hived_factory(db_url=db_url)
    # 8 s: longer than a kill -9 and a restart take on a loaded machine (3 s was not)
    later = hived.submit("job", delay="8s", labels={"run": "a", "app.example.com/part": "x y"})
    expiring = hived.submit("job", expires_in="2s")
    assert later["status"] == "scheduled" and expiring["status"] == "pending"
    by_label = hived.api("GET", "/tasks", params={"label": "run=a"})  # JSON_EXTRACT / ->>
    assert [t["id"] for t in by_label["items"]] == [later["id"]]
    assert hived.api("GET", "/tasks", params={"label": ["run=a", "x=y"]})["total"] == 0
    dotted = hived.api("GET", "/tasks", params={"label": "app.example.com/part=x y"})
    assert [t["id"] for t in dotted["items"]] == [later["id"]]
    hived.kill9()
    hived.start()
    assert hived.task(later["id"])["status"] == "scheduled"
    assert hived.wait_task(expiring["id"], timeout=10)["error"].startswith("expired: not started by ")
    hived.spawn("echo", ECHO)
    ended = hived.wait_task(later["id"], timeout=30)
    assert ended["status"] == "completed" and ended["labels"]["run"] == "a"
    started, due = (datetime.fromisoformat(ended[k]) for k in ("started_at", "not_before"))
    assert started >= due  # not started before its time, restart or not
    assert hived.task(expiring["id"])["status"] == "failed"


def test_a_time_that_passed_while_hived_was_down_takes_effect_at_start(
    hived_factory: Callable[..., Hived], db_url: str
) -> None:
    hived = hived_factory(db_url=db_url)
    task = hived.submit("job", delay="1s")
    assert hived.stop() == 0
    time.sleep(1.5)
    hived.start()
    wait_for(lambda: hived.task(task["id"])["status"] == "pending", what="the task due while hived was down")


def test_pauses_and_cordons_survive_a_restart(hived_factory: Callable[..., Hived], db_url: str) -> None:
    hived = hived_factory(db_url=db_url)
    hived.spawn("echo", ECHO)
    hived.spawn("other", ECHO)
    hived.api("POST", "/tasks/pause", json={"requires": ["gpu"]})
    hived.api("POST", "/agents/echo/cordon")
    held = hived.submit("job", requires=["gpu"])
    hived.kill9()
    hived.start()
    status = hived.api("GET", "/status")
    assert [p["requires"] for p in status["paused"]] == [["gpu"]] and status["cordoned"] == ["echo"]
    assert hived.task(held["id"])["waiting_reason"] == "paused (requires gpu)"
    wait_for(lambda: hived.api("GET", "/agents/echo")["status"] == "active", what="echo adopted")
    free = hived.wait_task(hived.submit("job")["id"])
    assert hived.api("GET", "/agents/echo")["cordoned"] is True
    assert free["agent_id"] == hived.api("GET", "/agents/other")["id"]  # never the cordoned one
    assert hived.api("POST", "/tasks/resume", json={"requires": ["gpu"]}) == {"paused": []}
    assert hived.task(held["id"])["waiting_reason"] is None  # no agent has gpu: it waits, unpaused
