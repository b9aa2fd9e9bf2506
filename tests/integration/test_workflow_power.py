"""for_each and sub-workflows through kill -9 of the real hived (SQLite and PostgreSQL): a fan-out
half done and a child run in flight resume where they were; no item and no child run is made twice."""

from __future__ import annotations

from typing import Any

from tests.helpers import Hived, wait_for
from tests.integration.test_workflows import ACT, apply, run, steps_of, wait_run


def test_kill9_mid_fan_out_and_mid_child_run_resumes_without_doubles(hived_factory: Any, db_url: str) -> None:
    hived: Hived = hived_factory(db_url=db_url)
    hived.spawn("w", ACT, max_concurrency=4)
    apply(
        hived,
        "inner",
        steps=[{"id": "nap", "type": "t", "payload": {"sleep": 1.5, "result": {"ok": 1}}}],
        outputs={"ok": "${{ steps.nap.result.ok }}"},
    )
    apply(
        hived,
        "outer",
        steps=[
            {
                "id": "each",
                "type": "t",
                "for_each": "${{ params.items }}",
                "max_parallel": 2,
                "payload": {"sleep": 0.5, "result": {"item": "${{ item }}"}},
            },
            {"id": "sub", "workflow": "inner"},
        ],
        params={"items": list(range(8))},
    )
    run_id = run(hived, "outer")
    wait_for(
        lambda: (
            (r := hived.api("GET", f"/runs/{run_id}"))
            and (steps_of(r)["each"].get("items") or {}).get("ended", 0) >= 2
            and (steps_of(r)["sub"].get("child") or {}).get("status") == "running"
        ),
        what="the fan-out half way and the child running",
    )
    hived.kill9()
    hived.start()
    done = wait_run(hived, run_id, timeout=60)
    assert done["status"] == "succeeded", done
    assert steps_of(done)["each"]["result"] == [{"item": i} for i in range(8)]
    assert steps_of(done)["sub"]["result"] == {"ok": 1}
    items = hived.api("GET", "/tasks", params={"run": run_id, "limit": 100})["items"]
    assert sorted(int(t["labels"]["hive/item"]) for t in items) == list(range(8))  # none made twice
    children = hived.api("GET", "/runs", params={"workflow": "inner"})["items"]
    assert [c["id"] for c in children] == [steps_of(done)["sub"]["child_run_id"]]
