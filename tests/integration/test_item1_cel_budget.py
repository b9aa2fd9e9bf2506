"""Item 1 of the hardening issue, on a real hived: a quadratic `when:` over a run param of 1,000
numbers used to hold hived's event loop for minutes (every answer stopped). Now the step fails with the
budget message, and hived answers meanwhile."""

from __future__ import annotations

import httpx

from tests.helpers import Hived, wait_for

ACT = {"python": "hivectl.agent.builtin:act"}
QUADRATIC = "params.l.all(x, params.l.all(y, x + y >= 0))"
NUMBERS = list(range(1000))


def test_item1_quadratic_when_fails_the_step_and_hived_keeps_answering(hived: Hived) -> None:
    hived.spawn("w", ACT)
    hived.api(
        "POST",
        "/workflows",
        json={
            "name": "costly",
            "params": {"l": []},
            "steps": [
                {"id": "first", "type": "t", "payload": {"result": {"ok": True}}},
                {"id": "gate", "type": "t", "needs": ["first"], "when": QUADRATIC},
            ],
        },
    )
    run_id = hived.api("POST", "/workflows/costly/execute", json={"params": {"l": NUMBERS}})["id"]

    def ended() -> dict | None:
        # every poll must be answered; a frozen loop would time this request out (10 s, generous)
        assert hived.client.get("/healthz", timeout=10).status_code == 200
        run = hived.api("GET", f"/runs/{run_id}", timeout=10)
        return run if run["status"] in ("succeeded", "failed", "cancelled") else None

    run = wait_for(ended, 60, interval=0.05, what=f"run {run_id} ended")
    gate = {s["id"]: s for s in run["steps"]}["gate"]
    assert run["status"] == "failed", run
    assert gate["status"] == "failed" and "exceeded the evaluation budget" in gate["error"], gate
    assert hived.client.get("/healthz", timeout=10).status_code == 200


def test_item1_quadratic_success_when_fails_the_attempt(hived: Hived) -> None:
    hived.spawn("w", ACT)
    task = hived.submit(
        "t",
        payload={"result": {"l": NUMBERS}},
        success_when=QUADRATIC.replace("params", "result"),
        max_attempts=1,
    )
    done = hived.wait_task(task["id"], timeout=60)
    assert done["status"] == "failed" and "exceeded the evaluation budget" in done["error"], done
    try:
        assert hived.client.get("/healthz", timeout=10).status_code == 200
    except httpx.TimeoutException as exc:  # pragma: no cover - the regression this guards against
        raise AssertionError("hived stopped answering") from exc
