"""Item 12 of the hardening issue, with a real hived and real agents: short tasks cancelled 0-10 ms
after their submit, so cancels land before assignment, during it, while the task runs and while its
result is being committed. Each task ends one way: its status is its last attempt's outcome, and
exactly one final event was published for it. On SQLite and on PostgreSQL."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from hivectl.client import Client
from hivectl.endpoint import Endpoint
from tests.helpers import Hived, wait_for

TASKS = 300
FINAL_EVENTS = ("task.completed", "task.failed", "task.cancelled")


def test_item12_cancels_racing_completions_record_one_end_and_one_event(
    hived_factory: Callable[..., Hived], db_url: str
) -> None:
    hived = hived_factory(db_url=db_url)
    hived.spawn("quick", {"python": "hivectl.agent.builtin:noop"}, max_concurrency=8)
    delays = random.Random(12)

    def submit_and_cancel(number: int) -> tuple[str, int]:
        task = hived.submit("x", payload={"n": number})
        time.sleep(delays.random() * 0.010)  # the race's input, not a wait for a condition
        resp = hived.client.put(f"/tasks/{task['id']}/cancel")
        assert resp.status_code in (200, 409), resp.text
        return str(task["id"]), resp.status_code

    with ThreadPoolExecutor(8) as pool:
        answers = dict(pool.map(submit_and_cancel, range(TASKS)))
    finals = {
        task_id: hived.wait_task(task_id, timeout=60) for task_id in answers
    }  # every task ends, none hangs
    with Client(Endpoint(socket=hived.socket)) as client:
        ends = Counter(e.data["task_id"] for e in client.events(follow=False) if e.kind in FINAL_EVENTS)
    wrong = []
    for task_id, task in finals.items():
        status = task["status"]
        outcomes = [a["outcome"] for a in task["attempt_history"]]
        broken_yes = answers[task_id] == 200 and status != "cancelled"  # a cancel that said yes holds
        if (outcomes and outcomes[-1] != status) or ends[task_id] != 1 or broken_yes:
            wrong.append((task_id, status, outcomes, ends[task_id], answers[task_id]))
    assert wrong == [], f"{len(wrong)} tasks ended two ways: {wrong[:5]}"
    statuses = Counter(t["status"] for t in finals.values())
    assert statuses["cancelled"] > 0 and set(statuses) <= {"cancelled", "completed"}
    wait_for(lambda: hived.api("GET", "/agents/quick")["current_tasks"] == [], what="agent free")
