"""Prometheus metrics (prometheus-client), one registry per daemon: counters and histograms updated
on the hot path, gauges read from the live state when scraped."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hived.events import (
    AgentRestarted,
    AttemptEnded,
    EventBus,
    ScheduleFired,
    TaskAssigned,
    TaskRetrying,
    TaskSubmitted,
)
from hived.model.limits import parse_throttle
from hived.model.states import AttemptReason
from hived.store import tasks as task_store
from hived.store.db import Database

log = logging.getLogger("hived.metrics")

FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SLOW = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)


class Children:
    """A labelled metric's children, each looked up once: prometheus_client's `labels()` checks and
    locks at every call (a few microseconds, three times per task on the hot path)."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.known: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.known.get(values)
        if child is None:
            child = self.known[values] = self.metric.labels(*values)
        return child


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
        self.throttles = Counter(
            "hive_limit_throttles",
            "Throttled reports (a handler hit a provider's limit and closed it), by the limit they named",
            ["limit"],
            registry=r,
        )
        self.schedule_starts = Counter(
            "hive_schedule_starts",
            "Start times of schedules, by what they did: started, skipped, queued, failed",
            ["schedule", "action"],
            registry=r,
        )
        self.usage_cost = Counter(
            "hive_usage_cost_usd",
            "Dollars handlers reported they spent, by agent and model",
            ["agent", "model"],
            registry=r,
        )
        self.usage_tokens = Counter(
            "hive_usage_tokens",
            "Tokens (input + output) handlers reported, by agent and model",
            ["agent", "model"],
            registry=r,
        )
        self._lookups: set[asyncio.Task[None]] = set()
        self.api_latency = Histogram(
            "hive_api_request_duration_seconds",
            "API request latency",
            ["method", "route"],
            buckets=FAST,
            registry=r,
        )
        self.attempts_by, self.task_run_by = Children(self.attempts), Children(self.task_run)
        self.api_latency_by = Children(self.api_latency)

    def follow(self, bus: EventBus) -> None:
        """Count what happens from the events it is made of."""
        bus.subscribe(TaskSubmitted, lambda _: self.submitted.inc())
        bus.subscribe(TaskRetrying, lambda _: self.retries.inc())
        bus.subscribe(AgentRestarted, lambda _: self.restarts.inc())
        bus.subscribe(AttemptEnded, self._attempt_ended)
        bus.subscribe(TaskAssigned, self._assigned)
        bus.subscribe(ScheduleFired, lambda e: self.schedule_starts.labels(e.schedule, e.action).inc())

    def count_throttles(self, bus: EventBus, db: Database) -> None:
        """Throttled attempts, per limit. The event does not carry the limit: the report that named it
        is the task's stored result, read once the attempt's end is committed (throttles are rare)."""

        def ended(event: AttemptEnded) -> None:
            if event.reason == AttemptReason.THROTTLED:
                lookup = asyncio.get_running_loop().create_task(self._throttled(db, event.task_id))
                self._lookups.add(lookup)
                lookup.add_done_callback(self._lookups.discard)

        bus.subscribe(AttemptEnded, ended)

    async def _throttled(self, db: Database, task_id: str) -> None:
        try:
            row = await db.read(lambda c: task_store.get_task(c, task_id))
            name = parse_throttle((row or {}).get("result"))[0]
        except Exception as exc:  # the database away, or the task ran again meanwhile: still counted
            log.debug("throttled task %s: its limit not read: %s", task_id, exc)
            name = ""
        self.throttles.labels(name).inc()

    def count_usage(self, agent: str, model: str | None, cost_usd: float, tokens: int) -> None:
        """A usage report recorded (once: hived.usage.service counts only new ones)."""
        if cost_usd:
            self.usage_cost.labels(agent, model or "").inc(cost_usd)
        if tokens:
            self.usage_tokens.labels(agent, model or "").inc(tokens)

    def _attempt_ended(self, event: AttemptEnded) -> None:
        self.attempts_by(event.outcome, event.reason).inc()
        if event.ran_seconds is not None:
            self.task_run_by(event.outcome).observe(event.ran_seconds)

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
        for prio, n in sorted(state.get("scheduled", {}).items()):
            depth.add_metric(["scheduled", str(prio)], n)
        in_flight = GaugeMetricFamily("hive_tasks_in_flight", "Attempts assigned or running")
        in_flight.add_metric([], state["in_flight"])
        waiting = GaugeMetricFamily("hive_tasks_waiting_input", "Interactive tasks waiting at their prompt")
        waiting.add_metric([], state.get("waiting_input", 0))
        unavailable = CounterMetricFamily(
            "hive_database_unavailable",
            "Database operations that failed because the database did not answer (API 503s, retried writes)",
        )
        unavailable.add_metric([], state.get("database_unavailable", 0))
        yield from (agents, depth, in_flight, waiting, unavailable)
        yield from _limit_gauges(state.get("limits", []))


def _limit_gauges(limits: list[Any]) -> Iterable[GaugeMetricFamily]:
    """Per limit (hived.model.limits.LimitInfo, as `GET /limits` shows it): tokens left in its bucket
    (limits with a rate), units held by running tasks, tasks waiting for it."""
    tokens = GaugeMetricFamily("hive_limit_tokens", "Tokens left in the limit's bucket", labels=["limit"])
    holders = GaugeMetricFamily(
        "hive_limit_holders", "Units of the limit held by running tasks", labels=["limit"]
    )
    waiting = GaugeMetricFamily("hive_limit_waiting", "Tasks waiting for the limit", labels=["limit"])
    for lim in limits:
        if lim.tokens is not None:
            tokens.add_metric([lim.name], lim.tokens)
        holders.add_metric([lim.name], lim.holders)
        waiting.add_metric([lim.name], lim.waiting)
    yield from (tokens, holders, waiting)


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
                self.metrics.api_latency_by(scope["method"], path).observe(time.perf_counter() - start)
