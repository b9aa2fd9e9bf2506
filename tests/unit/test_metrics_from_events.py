"""Metrics are fed by the event bus: each counter moves with the event it counts, and the events
that exist only for metrics (attempt ends, assignments, restarts) never reach the log that /events
streams."""

from __future__ import annotations

from hived.events import (
    AgentRestarted,
    AttemptEnded,
    EventBus,
    TaskAssigned,
    TaskRetrying,
    TaskSubmitted,
)
from hived.metrics import Metrics


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_each_counter_moves_with_its_event() -> None:
    bus, metrics = EventBus(), Metrics()
    metrics.follow(bus)
    bus.publish(TaskSubmitted("t1", "build", 5))
    bus.publish(TaskAssigned("t1", 1, 2.5))
    bus.publish(TaskAssigned("t1", 2, None))  # a retry's assignment: no wait observed
    bus.publish(AttemptEnded("t1", "failed", "timeout", 1.0))
    bus.publish(TaskRetrying("t1", "a1", "slow", "timeout", 1, 2.0))
    bus.publish(AttemptEnded("t1", "completed", "", None))  # never delivered: no run time
    bus.publish(AgentRestarted("a1"))
    assert value(metrics, "hive_tasks_submitted_total") == 1
    assert value(metrics, "hive_task_wait_seconds_count") == 1
    assert value(metrics, "hive_task_wait_seconds_sum") == 2.5
    assert value(metrics, "hive_task_attempts_total", outcome="failed", reason="timeout") == 1
    assert value(metrics, "hive_task_attempts_total", outcome="completed", reason="") == 1
    assert value(metrics, "hive_task_run_seconds_count", outcome="failed") == 1
    assert value(metrics, "hive_task_run_seconds_count", outcome="completed") == 0
    assert value(metrics, "hive_task_retries_total") == 1
    assert value(metrics, "hive_agent_restarts_total") == 1


async def test_events_for_metrics_only_are_not_streamed() -> None:
    bus = EventBus()
    bus.publish(TaskSubmitted("t1", "build", 5))
    bus.publish(AttemptEnded("t1", "completed", "", 0.1))
    bus.publish(TaskAssigned("t1", 1, 0.0))
    bus.publish(AgentRestarted("a1"))
    assert [e.kind for e in bus.since(0)] == ["task.submitted"]
    assert bus.last_id == 1
