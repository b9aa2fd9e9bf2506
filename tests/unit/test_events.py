"""The typed event stream: each kind's form on the wire (what /events streams and clients parse)
stays exactly what it was when events were published by kind and keyword fields."""

from __future__ import annotations

from typing import Any

import pytest

from hived.clock import FakeClock
from hived.events import (
    AgentStatusChanged,
    EventBus,
    Published,
    RunChanged,
    StepChanged,
    TaskEnded,
    TaskRetrying,
    TaskSubmitted,
)
from hived.model.states import AgentStatus, RunStatus, StepStatus, TaskStatus


@pytest.mark.parametrize(
    ("event", "kind", "data"),
    [
        (
            AgentStatusChanged("w", "a1", str(AgentStatus.ACTIVE), str(AgentStatus.STARTING), None),
            "agent.status",
            {"agent": "w", "agent_id": "a1", "status": "active", "previous": "starting", "reason": None},
        ),
        (
            TaskSubmitted("t1", "build", 5),
            "task.submitted",
            {"task_id": "t1", "type": "build", "priority": 5},
        ),
        (
            TaskRetrying("t1", "a1", "boom", "error", 1, 1.5),
            "task.retrying",
            {
                "task_id": "t1",
                "agent_id": "a1",
                "error": "boom",
                "reason": "error",
                "attempt": 1,
                "retry_in": 1.5,
            },
        ),
        (
            TaskEnded("t1", "a1", None, str(TaskStatus.COMPLETED), {"secret": "not streamed"}),
            "task.completed",
            {"task_id": "t1", "agent_id": "a1", "error": None},
        ),
        (
            TaskEnded("t1", None, None, str(TaskStatus.CANCELLED)),
            "task.cancelled",
            {"task_id": "t1", "agent_id": None, "error": None},
        ),
        (
            StepChanged("r1", "build", str(StepStatus.RUNNING), "t1", None),
            "step.running",
            {"run_id": "r1", "step_id": "build", "status": "running", "task_id": "t1", "agent_id": None},
        ),
        (
            RunChanged("r1", "ship-it", str(RunStatus.SUCCEEDED)),
            "run.succeeded",
            {"run_id": "r1", "workflow": "ship-it", "status": "succeeded"},
        ),
    ],
)
async def test_the_wire_form_of_each_kind(event: Published, kind: str, data: dict[str, Any]) -> None:
    clock = FakeClock()
    entry = EventBus(clock=clock).publish(event)
    assert list(entry.as_json().items()) == [
        ("id", 1),
        ("kind", kind),
        ("time", "2026-01-01T00:00:00Z"),
    ] + list(data.items())  # the order of the fields too


async def test_subscribers_get_their_type_in_order_and_plain_kinds_still_stream() -> None:
    bus, seen = EventBus(), []
    bus.subscribe(TaskEnded, lambda e: seen.append(("first", e.task_id)))
    bus.subscribe(TaskEnded, lambda e: seen.append(("second", e.task_id)))
    bus.subscribe(RunChanged, lambda e: seen.append(("run", e.run_id)))
    bus.publish(TaskEnded("t1", None, None, "failed"))
    bus.publish("task.submitted", task_id="t2", type="x", priority=1)  # by kind: streamed, no subscriber
    assert seen == [("first", "t1"), ("second", "t1")]
    assert [(e.kind, e.data) for e in bus.since(0)] == [
        ("task.failed", {"task_id": "t1", "agent_id": None, "error": None}),
        ("task.submitted", {"task_id": "t2", "type": "x", "priority": 1}),
    ]


@pytest.mark.parametrize(
    ("capacity", "published", "after", "most", "ids"),
    [
        (10, 5, 0, None, [1, 2, 3, 4, 5]),
        (10, 5, 0, 2, [1, 2]),
        (10, 5, 3, 2, [4, 5]),
        (10, 5, 4, 3, [5]),
        (10, 5, 5, 3, []),
        (3, 8, 0, 2, [6, 7]),  # the oldest kept come first once the log has wrapped
        (3, 8, 6, None, [7, 8]),
    ],
)
async def test_since_gives_at_most_most_events_oldest_first(
    capacity: int, published: int, after: int, most: int | None, ids: list[int]
) -> None:
    bus = EventBus(capacity=capacity)
    for n in range(published):
        bus.publish("task.submitted", task_id=str(n), type="x", priority=0)
    assert [e.id for e in bus.since(after, most)] == ids
