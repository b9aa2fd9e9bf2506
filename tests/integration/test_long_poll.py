"""`GET /tasks/{id}?wait=S` and `GET /runs/{id}?wait=S`: one request that answers the moment the task
or run ends (or after S seconds, with its state then), so a waiting client needs no polling."""

from __future__ import annotations

from tests.helpers import Hived

SLEEP = {"python": "hivectl.agent.builtin:sleep"}


def test_a_task_read_with_wait_answers_when_it_ends(hived: Hived) -> None:
    hived.spawn("sleeper", SLEEP, capabilities=["sleep"])
    task = hived.submit("sleep", payload={"seconds": 1.5}, requires=["sleep"])
    done = hived.api("GET", f"/tasks/{task['id']}", params={"wait": 30}, timeout=40)
    assert done["status"] == "completed"  # one request, no polling
    assert hived.api("GET", f"/tasks/{task['id']}", params={"wait": 30})["status"] == "completed"


def test_a_wait_that_runs_out_answers_with_the_state_then(hived: Hived) -> None:
    task = hived.submit("t", requires=["nobody"])
    assert hived.api("GET", f"/tasks/{task['id']}", params={"wait": 0.5})["status"] == "pending"
    assert hived.client.get(f"/tasks/{task['id']}", params={"wait": 61}).status_code == 422


def test_a_run_read_with_wait_answers_when_it_ends(hived: Hived) -> None:
    hived.spawn("sleeper", SLEEP, capabilities=["sleep"])
    steps = [{"id": "nap", "type": "sleep", "requires": ["sleep"], "payload": {"seconds": 1}}]
    hived.api("POST", "/workflows", json={"name": "nap", "steps": steps})
    run = hived.api("POST", "/workflows/nap/execute", json={})
    done = hived.api("GET", f"/runs/{run['id']}", params={"wait": 30}, timeout=40)
    assert done["status"] == "succeeded" and done["steps"][0]["status"] == "succeeded"
