"""Prometheus metrics (prometheus-client), one registry per daemon: counters and histograms updated
on the hot path, gauges read from the live state when scraped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hived.events import AgentRestarted, AttemptEnded, EventBus, TaskAssigned, TaskRetrying, TaskSubmitted

FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SLOW = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """The daemon's registry. Task and agent counters are fed by the event bus (`follow`); the API's
    latency by its middleware; gauges are read from the live state when scraped (`add_state`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.task_wait = Histogram(
            "hive_task_wait_seconds", "Time from submit to first assignment", buckets=SLOW, registry=r
        )
        self.task_run = Histogram(
            "hive_task_run_seconds", "Duration of attempts, by outcome", ["outcome"], buckets=SLOW, registry=r
        )
        self.attempts = Counter(
            "hive_task_attempts", "Attempts ended, by outcome and reason", ["outcome", "reason"], registry=r
        )
        self.retries = Counter("hive_task_retries", "Attempts followed by a retry", registry=r)
        self.submitted = Counter("hive_tasks_submitted", "Tasks accepted", registry=r)
        self.restarts = Counter("hive_agent_restarts", "Agent restarts by the supervisor", registry=r)
        self.api_latency = Histogram(
            "hive_api_request_duration_seconds",
            "API request latency",
            ["method", "route"],
            buckets=FAST,
            registry=r,
        )

    def follow(self, bus: EventBus) -> None:
        """Count what happens from the events it is made of."""
        bus.subscribe(TaskSubmitted, lambda _: self.submitted.inc())
        bus.subscribe(TaskRetrying, lambda _: self.retries.inc())
        bus.subscribe(AgentRestarted, lambda _: self.restarts.inc())
        bus.subscribe(AttemptEnded, self._attempt_ended)
        bus.subscribe(TaskAssigned, self._assigned)

    def _attempt_ended(self, event: AttemptEnded) -> None:
        self.attempts.labels(event.outcome, event.reason).inc()
        if event.ran_seconds is not None:
            self.task_run.labels(event.outcome).observe(event.ran_seconds)

    def _assigned(self, event: TaskAssigned) -> None:
        if event.waited_seconds is not None:
            self.task_wait.observe(event.waited_seconds)

    def add_state(self, read: Callable[[], dict[str, Any]]) -> None:
        self.registry.register(_StateCollector(read))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self.read = read

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        state = self.read()
        agents = GaugeMetricFamily("hive_agents", "Agents by status", labels=["status"])
        for status, n in sorted(state["agents"].items()):
            agents.add_metric([status], n)
        depth = GaugeMetricFamily(
            "hive_queue_depth", "Tasks waiting, by state and priority", labels=["state", "priority"]
        )
        for (st, prio), n in sorted(state["queue"].items()):
            depth.add_metric([st, str(prio)], n)
        in_flight = GaugeMetricFamily("hive_tasks_in_flight", "Attempts assigned or running")
        in_flight.add_metric([], state["in_flight"])
        unavailable = CounterMetricFamily(
            "hive_database_unavailable",
            "Database operations that failed because the database did not answer (API 503s, retried writes)",
        )
        unavailable.add_metric([], state.get("database_unavailable", 0))
        yield from (agents, depth, in_flight, unavailable)


class LatencyMiddleware:
    """Pure ASGI middleware: request latency per route template (not per id)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            if path not in ("/events", "/agents/{agent_id}/work"):  # long-polls and streams
                self.metrics.api_latency.labels(scope["method"], path).observe(time.perf_counter() - start)
