"""The queue controls as a user drives them with hivectl against a real hived: pauses, cordons,
scheduled and expiring tasks, labels, bulk cancel and retry (with and without --yes), bad input."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_cli import hivectl
from tests.helpers import Hived, wait_for

ECHO = {"python": "hivectl.agent.builtin:echo"}


@pytest.fixture
def env(hived: Hived) -> dict[str, str]:
    return dict(hived.env)


def ok(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    done = hivectl(*args, env=env, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bulk_cancel_asks_first_and_retry_with_yes(hived: Hived, env: dict[str, str]) -> None:
    ids = [ok("task", "submit", "job", "--label", "batch=7", env=env).strip() for _ in range(3)]
    other = ok("task", "submit", "job", "--label", "batch=8", env=env).strip()
    listed = json.loads(ok("task", "list", "--label", "batch=7", "-o", "json", env=env))
    assert sorted(t["id"] for t in listed) == sorted(ids)
    assert {t["labels"]["batch"] for t in listed} == {"7"}

    declined = hivectl("task", "cancel", "--status", "pending", "--label", "batch=7", env=env, stdin="n\n")
    assert declined.returncode == 1
    assert "cancel 3 tasks (status pending, label batch=7)? [y/N]" in declined.stderr
    assert "error: aborted: no task was cancelled" in declined.stderr
    assert {hived.task(t)["status"] for t in ids} == {"pending"}
    no_answer = hivectl("task", "cancel", "--status", "pending", env=env, stdin="")
    assert no_answer.returncode == 1 and {hived.task(t)["status"] for t in ids} == {"pending"}

    out = ok("task", "cancel", "--status", "pending", "--label", "batch=7", env=env, stdin="y\n")
    assert out.strip() == "3 tasks cancelled"
    assert {hived.task(t)["status"] for t in ids} == {"cancelled"}
    assert hived.task(other)["status"] == "pending"

    out = ok("task", "retry", "--status", "cancelled", "--type", "job", "--yes", env=env)
    assert out.strip() == "3 tasks retried"
    assert {hived.task(t)["status"] for t in ids} == {"pending"}
    assert ok("task", "cancel", "--status", "running", "--yes", env=env).strip().startswith("no tasks match")


def test_pause_holds_and_resume_releases(hived: Hived, env: dict[str, str]) -> None:
    hived.spawn("echo", ECHO)
    out = ok("queue", "pause", "--type", "held", env=env)
    assert out.strip() == "paused  type held"
    task_id = ok("task", "submit", "held", env=env).strip()
    done = ok("task", "submit", "free", "--wait", "-o", "json", env=env)
    assert json.loads(done)["status"] == "completed"
    shown = json.loads(ok("task", "show", task_id, "-o", "json", env=env))
    assert (shown["status"], shown["waiting_reason"]) == ("pending", "paused (type held)")
    assert ["paused", "type", "held"] in [line.split() for line in ok("status", env=env).splitlines()]
    hived.stop()  # durable: the pause outlives a restart
    hived.start()
    assert ok("queue", env=env).strip() == "paused  type held"
    assert hived.task(task_id)["status"] == "pending"
    assert ok("queue", "resume", "--type", "held", env=env).strip() == "nothing holds the queue"
    assert hived.wait_task(task_id)["status"] == "completed"
    missing = hivectl("queue", "resume", "--type", "held", env=env)
    assert missing.returncode == 1 and "not paused for type held" in missing.stderr


def test_a_cordoned_agent_gets_no_new_work(hived: Hived, env: dict[str, str]) -> None:
    hived.spawn("echo", ECHO)
    assert ok("agent", "cordon", "echo", env=env).strip() == "agent/echo cordoned"
    assert "active,cordoned" in ok("agent", "list", env=env)
    task_id = ok("task", "submit", "job", env=env).strip()
    assert hived.task(task_id)["status"] == "pending"
    assert "cordoned  echo" in ok("queue", env=env)
    ok("agent", "uncordon", "echo", env=env)
    assert hived.wait_task(task_id)["status"] == "completed"
    assert json.loads(ok("agent", "show", "echo", "-o", "json", env=env))["cordoned"] is False


def test_scheduled_and_expiring_tasks(hived: Hived, env: dict[str, str]) -> None:
    hived.spawn("echo", ECHO)
    task = json.loads(ok("task", "submit", "job", "--delay", "1s", "-o", "json", env=env))
    assert task["status"] == "scheduled" and task["not_before"]
    assert hived.wait_task(task["id"])["status"] == "completed"
    past = json.loads(ok("task", "submit", "job", "--at", "2020-01-01T00:00:00Z", "-o", "json", env=env))
    assert hived.wait_task(past["id"])["status"] == "completed"  # a time past is now
    ok("agent", "cordon", "echo", env=env)
    expiring = json.loads(ok("task", "submit", "job", "--expires-in", "500ms", "-o", "json", env=env))
    ended = hived.wait_task(expiring["id"])
    assert ended["status"] == "failed" and ended["error"].startswith("expired: not started by ")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["task", "submit", "j", "--delay", "soon"], 1, "--delay: 'soon' is not a duration"),
        (["task", "submit", "j", "--expires-in", "-1m"], 1, "--expires-in:"),
        (["task", "submit", "j", "--at", "tomorrow"], 2, "--at: 'tomorrow' is not an ISO 8601 time"),
        (["task", "submit", "j", "--delay", "1m", "--at", "2030-01-01T00:00:00Z"], 1, "give delay or at"),
        (["task", "submit", "j", "--label", "team"], 2, "--label: 'team' is not KEY=VALUE"),
        (["task", "list", "--label", "a b=c"], 2, "--label: 'a b': a label key is"),
        (["task", "cancel"], 2, "give a task REF, or --status S"),
        (["task", "cancel", "abcd", "--status", "pending"], 2, "not both"),
        (["task", "retry", "--status", "pending", "--yes"], 1, "--status: retry takes tasks that are failed"),
        (["queue", "resume", "--all", "--type", "x"], 2, "--all: not with --type"),
    ],
)
def test_bad_input_is_named_and_changes_nothing(
    hived: Hived, env: dict[str, str], args: list[str], code: int, message: str
) -> None:
    done = hivectl(*args, env=env)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert message in done.stderr
    assert hived.api("GET", "/tasks")["total"] == 0


def test_the_api_refuses_a_bad_label_filter(hived: Hived) -> None:
    resp = hived.client.get("/tasks", params={"label": "nolabel"})
    assert resp.status_code == 422 and resp.json()["detail"].startswith("label: 'nolabel' is not KEY=VALUE")
    wait_for(lambda: True)
