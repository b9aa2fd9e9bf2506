"""The hive-agent runtime: register, heartbeat, long-poll for leases, run up to max_concurrency
attempts at once, and hand every result in until hived acknowledges it (across hived restarts)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from hivectl.agent.handlers import Handler, Outcome, make_handler
from hivectl.agent.resources import TreeStats
from hivectl.endpoint import Endpoint
from hived.api.schemas import AttemptResult, HeartbeatRequest, Lease, RegisterRequest, WorkRequest

log = logging.getLogger("hive-agent")
POLL_WAIT = 20.0


class Fatal(Exception):
    """hived no longer knows this agent (deleted, or a newer incarnation took over)."""


@dataclass
class Running:
    lease: Lease
    task: asyncio.Task[None]
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)


class AgentRuntime:
    def __init__(self, endpoint: Endpoint, request: RegisterRequest) -> None:
        self.endpoint = endpoint
        self.request = request
        self.client = httpx.AsyncClient(**endpoint.async_client_kwargs(timeout=POLL_WAIT + 15))
        self.running: dict[str, Running] = {}
        self.unacked: dict[str, AttemptResult] = {}
        self.sending: set[str] = set()
        self.stopping = asyncio.Event()
        self.wake = asyncio.Event()  # a slot freed or a result is waiting
        self.in_poll = False
        self.accepting = True
        self.stats = TreeStats()
        self.agent_id = ""
        self.incarnation = 0
        self.max_concurrency = 1
        self.interval = 5.0
        self.handler: Handler | None = None

    # --- HTTP with retries ------------------------------------------------------------------------

    async def call(self, path: str, body: Any, retry: bool = True) -> Any:
        delay = 0.1
        while True:
            try:
                resp = await self.client.post(path, json=body)
            except httpx.TransportError as exc:
                if not retry or self.stopping.is_set():
                    raise
                log.warning(
                    "hived unreachable at %s (%s); retrying in %.1fs",
                    self.endpoint.describe(),
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if resp.status_code in (404, 409) and path != "/agents/register":
                raise Fatal(resp.json().get("detail", resp.text))
            if resp.status_code >= 500 and retry and not self.stopping.is_set():
                log.error(
                    "hived answered %s on %s: %s; retrying in %.1fs",
                    resp.status_code,
                    path,
                    resp.text[:200],
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if resp.status_code >= 400:
                raise Fatal(f"{path}: HTTP {resp.status_code}: {resp.text}")
            return resp.json()

    # --- life cycle -------------------------------------------------------------------------------

    async def run(self) -> int:
        try:
            reg = await self.call("/agents/register", self.request.model_dump(mode="json"))
        except Fatal as exc:
            log.error("registration refused: %s", exc)
            return 1
        agent = reg["agent"]
        self.agent_id, self.incarnation = agent["id"], reg["incarnation"]
        self.max_concurrency, self.interval = agent["max_concurrency"], reg["heartbeat_interval"]
        handler_spec = reg.get("handler") or (
            self.request.spec.handler.model_dump()
            if self.request.spec and self.request.spec.handler
            else None
        )
        workdir = reg.get("workdir") or os.getcwd()
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
        if handler_spec is None:
            log.error("no handler: give --exec or --python")
            return 1
        try:
            self.handler = make_handler(handler_spec, workdir, reg.get("env") or {})
        except Exception as exc:
            log.error("cannot load handler %s: %s", handler_spec, exc)
            return 1
        log.info(
            "registered as %s (id %s, incarnation %d, workdir %s, max_concurrency %d)",
            agent["name"],
            self.agent_id,
            self.incarnation,
            workdir,
            self.max_concurrency,
        )
        loops = [
            asyncio.create_task(self.heartbeat_loop()),
            asyncio.create_task(self.poll_loop()),
            asyncio.create_task(self.report_loop()),
        ]
        stop = asyncio.create_task(self.stopping.wait())
        done, _ = await asyncio.wait([*loops, stop], return_when=asyncio.FIRST_COMPLETED)
        code = 0
        for task in done:
            if task is not stop and (exc := task.exception()):
                log.error("stopping: %s", exc)
                code = 0 if isinstance(exc, Fatal) else 1
        await self.shutdown(loops)
        return code

    async def shutdown(self, loops: list[asyncio.Task[Any]]) -> None:
        self.accepting = False
        self.stopping.set()
        for item in self.running.values():
            item.cancel.set()
        if self.running:
            await asyncio.wait([r.task for r in self.running.values()], timeout=5)
        for loop in loops:
            loop.cancel()
        if self.unacked and self.agent_id:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send_results(), timeout=2)
        await self.client.aclose()

    # --- loops ------------------------------------------------------------------------------------

    async def heartbeat_loop(self) -> None:
        while True:
            rss, cpu = self.stats.sample()
            body = HeartbeatRequest(
                incarnation=self.incarnation,
                running=[*self.running, *self.unacked],
                rss_bytes=rss,
                cpu_percent=cpu,
            )
            reply = await self.call(f"/agents/{self.agent_id}/heartbeat", body.model_dump(mode="json"))
            self.cancel(reply.get("cancel") or [])
            self.interval = reply.get("heartbeat_interval", self.interval)
            await asyncio.sleep(self.interval)

    async def poll_loop(self) -> None:
        """Always one long-poll open: it brings leases for free slots, and cancels even when full."""
        while True:
            free = self.max_concurrency - len(self.running) if self.accepting else 0
            results = self.take_results()
            body = WorkRequest(
                incarnation=self.incarnation, slots=max(0, free), wait=POLL_WAIT, results=results
            )
            self.in_poll = True
            try:
                reply = await self.call(f"/agents/{self.agent_id}/work", body.model_dump(mode="json"))
            finally:
                self.in_poll = False
                self.sending.difference_update(r.task_id for r in results)
            self.handle_reply(reply)

    async def report_loop(self) -> None:
        """Results that finish while a long-poll is out go in at once, on a second request."""
        while True:
            await self.wake.wait()
            await asyncio.sleep(0.001)  # gather a burst into one request
            if self.in_poll and self.unacked.keys() - self.sending:
                await self.send_results()
            else:
                await asyncio.sleep(0.01)

    async def send_results(self) -> None:
        results = self.take_results()
        if not results:
            return
        body = WorkRequest(incarnation=self.incarnation, slots=0, wait=0, results=results)
        try:
            reply = await self.call(f"/agents/{self.agent_id}/work", body.model_dump(mode="json"))
        finally:
            self.sending.difference_update(r.task_id for r in results)
        self.handle_reply(reply)

    def take_results(self) -> list[AttemptResult]:
        fresh = [r for task_id, r in self.unacked.items() if task_id not in self.sending]
        self.sending.update(r.task_id for r in fresh)
        return fresh

    def handle_reply(self, reply: dict[str, Any]) -> None:
        for ack in reply.get("acks", []):
            self.unacked.pop(ack["task_id"], None)
            if not ack["accepted"]:
                log.info("task %s: result refused (%s)", ack["task_id"], ack.get("reason"))
        self.cancel(reply.get("cancel") or [])
        if reply.get("status") in ("draining", "stopped"):
            self.accepting = False
        elif reply.get("status") in ("active", "busy"):
            self.accepting = True
        for raw in reply.get("tasks", []):
            self.start(Lease.model_validate(raw))

    def cancel(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            if item := self.running.get(task_id):
                log.info("task %s: cancel requested", task_id)
                item.cancel.set()

    # --- attempts ---------------------------------------------------------------------------------

    def start(self, lease: Lease) -> None:
        if lease.task_id in self.running:
            return
        log.info("task %s: attempt %d started (%s)", lease.task_id, lease.attempt, lease.type)
        item = Running(lease, asyncio.create_task(asyncio.sleep(0)))
        item.task = asyncio.create_task(self.execute(item))
        self.running[lease.task_id] = item

    async def execute(self, item: Running) -> None:
        lease = item.lease
        assert self.handler is not None
        try:
            outcome = await self.handler.run(
                lease.task_id,
                lease.type,
                lease.attempt,
                lease.payload,
                lease.timeout,
                lease.stall_timeout,
                lease.env,
                item.cancel,
            )
        except Exception as exc:  # a bug in a handler wrapper must not kill the agent
            outcome = Outcome(False, error=f"{type(exc).__name__}: {exc}", reason="error")
        if self.stopping.is_set() and outcome.reason == "cancelled":
            outcome.reason, outcome.error = "interrupted", "the agent was stopped"
        took = time.monotonic() - item.started
        log.info(
            "task %s: attempt %d %s in %.3fs%s",
            lease.task_id,
            lease.attempt,
            "succeeded" if outcome.ok else f"failed ({outcome.reason})",
            took,
            f": {outcome.error}" if outcome.error else "",
        )
        self.unacked[lease.task_id] = AttemptResult(
            task_id=lease.task_id,
            attempt=lease.attempt,
            lease=lease.lease,
            ok=outcome.ok,
            result=outcome.result,
            error=outcome.error,
            reason=outcome.reason,
            output=outcome.output or None,
        )
        self.running.pop(lease.task_id, None)
        self.wake.set()
