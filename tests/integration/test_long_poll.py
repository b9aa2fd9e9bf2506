"""`GET /tasks/{id}?wait=S`, `GET /runs/{id}?wait=S` and `POST /tasks?wait=S`: one request that answers
the moment the task or run ends (or after S seconds, with its state then), so a waiting client needs no
polling."""

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


def test_a_submit_with_wait_answers_once_the_task_has_ended(hived: Hived) -> None:
    hived.spawn("sleeper", SLEEP, capabilities=["sleep"])
    hived.spawn("failer", {"python": "hivectl.agent.builtin:fail"}, capabilities=["fail"])
    body = {"type": "sleep", "payload": {"seconds": 1}, "requires": ["sleep"]}
    done = hived.api("POST", "/tasks", params={"wait": 30}, json=body, timeout=40)
    assert (done["status"], done["result"]) == ("completed", {"slept": 1})  # one request: submit and outcome
    body = {"type": "f", "payload": {"message": "no"}, "requires": ["fail"], "max_attempts": 1}
    failed = hived.api("POST", "/tasks", params={"wait": 30}, json=body, timeout=40)
    assert failed["status"] == "failed" and "no" in failed["error"]
    assert hived.task(failed["id"])["status"] == "failed"


def test_a_submit_whose_wait_runs_out_answers_with_the_task_then_and_a_bad_wait_submits_nothing(
    hived: Hived,
) -> None:
    waited = hived.api("POST", "/tasks", params={"wait": 0.3}, json={"type": "t", "requires": ["nobody"]})
    assert waited["status"] == "pending" and hived.task(waited["id"])["status"] == "pending"
    for wait in ("61", "-1", "soon"):
        refused = hived.client.post("/tasks", params={"wait": wait}, json={"type": "bad-wait"})
        assert refused.status_code == 422 and "wait" in refused.json()["detail"], wait
    assert hived.api("GET", "/tasks", params={"type": "bad-wait"})["total"] == 0


def test_a_run_read_with_wait_answers_when_it_ends(hived: Hived) -> None:
    hived.spawn("sleeper", SLEEP, capabilities=["sleep"])
    steps = [{"id": "nap", "type": "sleep", "requires": ["sleep"], "payload": {"seconds": 1}}]
    hived.api("POST", "/workflows", json={"name": "nap", "steps": steps})
    run = hived.api("POST", "/workflows/nap/execute", json={})
    done = hived.api("GET", f"/runs/{run['id']}", params={"wait": 30}, timeout=40)
    assert done["status"] == "succeeded" and done["steps"][0]["status"] == "succeeded"
