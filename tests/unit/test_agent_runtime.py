"""The agent runtime against an in-memory hived (in place of the HTTP client): long-polls, results handed in
at once and never lost, cancels, draining, stop and disowning. Handlers here are gates the test opens."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hivectl.agent import runtime
from hivectl.agent.connection import AgentGone, Connection, Refused, next_backoff
from hivectl.agent.handlers import AttemptOutcome, StopRequest, stop_message
from hivectl.agent.http import Response, TransportError
from hivectl.agent.outbox import Outbox
from hivectl.agent.runtime import AgentRuntime, Session
from hivectl.agent.wire import AttemptResult, Lease, ResultAck
from hivectl.endpoint import Endpoint

AGENT = "agent-1"


class FakeHived:
    """hived's side of the agent protocol, in memory, with switches for outages and verdicts."""

    def __init__(self) -> None:
        self.queue: list[dict[str, Any]] = []
        self.new_work = asyncio.Event()
        self.work_requests: list[dict[str, Any]] = []
        self.heartbeats: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []
        self.cancels: list[str] = []
        self.status = "active"
        self.down = False
        self.failed_connections = 0
        self.gone = False
        self.refuse: set[str] = set()
        self.open_polls = 0
        self.asking = 0  # the slots the open poll asked for
        self.interval = 0.1

    async def close(self) -> None:
        """The HTTP client's: no connections to close here."""

    def add_task(self, task_id: str, **fields: Any) -> None:
        self.queue.append(
            {"task_id": task_id, "attempt": 1, "lease": 1, "type": "t", "payload": {}, **fields}
        )
        self.new_work.set()

    def result_of(self, task_id: str) -> dict[str, Any] | None:
        return next((r for r in self.results if r["task_id"] == task_id), None)

    async def post(self, path: str, payload: Any, timeout: float | None = None) -> Response:
        """What hive-agent's HTTP client does, answered in memory (the body goes through JSON)."""
        if self.down:
            self.failed_connections += 1
            raise TransportError("ConnectionRefusedError: connection refused")
        if self.gone:
            return reply(409, {"detail": "incarnation 1 was replaced by 2"})
        body = json.loads(json.dumps(payload))
        if path == f"/agents/{AGENT}/heartbeat":
            self.heartbeats.append(body)
            answer = {"status": self.status, "cancel": self.cancels, "heartbeat_interval": self.interval}
            self.cancels = []
            return reply(200, answer)
        assert path == f"/agents/{AGENT}/work"
        body["open_polls"] = self.open_polls
        self.work_requests.append(body)
        acks = []
        if body["results"] and self.open_polls and self.asking == 0:
            self.new_work.set()  # like hived: results wake an open poll that asked for nothing
        for result in body["results"]:
            accepted = result["task_id"] not in self.refuse
            if accepted:
                self.results.append(result)
            acks.append({"task_id": result["task_id"], "accepted": accepted, "reason": None})
        tasks: list[dict[str, Any]] = []
        if body["wait"] > 0:
            # Like hived: a poll waits for work it can take, or (slots=0) for a wake-up.
            self.open_polls += 1
            self.asking = body["slots"]
            try:
                if not (body["slots"] > 0 and self.queue) and not self.cancels:
                    self.new_work.clear()
                    try:
                        await asyncio.wait_for(self.new_work.wait(), body["wait"])
                    except TimeoutError:
                        pass
            finally:
                self.open_polls -= 1
            if self.status == "active":
                tasks, self.queue = self.queue[: body["slots"]], self.queue[body["slots"] :]
        answer = {"tasks": tasks, "acks": acks, "cancel": self.cancels, "status": self.status}
        self.cancels = []
        return reply(200, answer)


def reply(status: int, body: Any) -> Response:
    return Response(status, "", json.dumps(body).encode())


class Gates:
    """A handler whose attempts end when the test opens their gate (or when they are stopped)."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.started: list[str] = []
        self.stopped: dict[str, str] = {}
        self.running = 0
        self.most_at_once = 0

    def open(self, *task_ids: str) -> None:
        for task_id in task_ids:
            self.gates[task_id].set()

    async def run(self, lease: Lease, stop: StopRequest) -> AttemptOutcome:
        self.started.append(lease.task_id)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        gate = asyncio.create_task(self.gates[lease.task_id].wait())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({gate, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gate.cancel()
            stopped.cancel()
            self.running -= 1
        if stop.reason and not self.gates[lease.task_id].is_set():
            self.stopped[lease.task_id] = stop.reason
            return AttemptOutcome.failed(stop.reason, stop_message(stop.reason), output="bye")
        return AttemptOutcome(ok=True, result={"done": lease.task_id}, output="some output")


def connection(hived: FakeHived) -> Connection:
    conn = Connection(Endpoint(socket=Path("/nonexistent.sock")))
    conn.client = hived  # type: ignore[assignment]
    return conn


class Harness:
    def __init__(self, max_concurrency: int = 1, poll_wait: float = 5.0) -> None:
        self.hived = FakeHived()
        self.handler = Gates()
        self.conn = connection(self.hived)
        session = Session(AGENT, "worker", 1, max_concurrency, 0.1, self.handler)
        self.runtime = AgentRuntime(self.conn, session, poll_wait=poll_wait)
        self.exit: asyncio.Task[int] | None = None

    async def __aenter__(self) -> Harness:
        self.exit = asyncio.create_task(self.runtime.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.exit is not None
        if not self.exit.done():
            self.runtime.stopping.set()
            await asyncio.wait_for(self.exit, 10)
        await self.conn.aclose()


async def eventually(predicate: Callable[[], Any], timeout: float = 3.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)
    return value


async def test_a_result_ending_during_a_long_poll_goes_in_at_once() -> None:
    async with Harness(max_concurrency=2, poll_wait=5.0) as h:
        h.hived.add_task("t1")
        await eventually(lambda: h.handler.started == ["t1"], what="t1 started")
        await eventually(lambda: h.hived.open_polls == 1, what="a long-poll for the free slot")
        started = time.monotonic()
        h.handler.open("t1")
        result = await eventually(lambda: h.hived.result_of("t1"), what="t1's result")
        assert time.monotonic() - started < 1.0  # not after the 5 s long-poll
        assert result["ok"] and result["result"] == {"done": "t1"} and result["output"] == "some output"
        report = next(r for r in h.hived.work_requests if r["results"])
        assert (report["slots"], report["wait"], report["open_polls"]) == (0, 0, 1)


async def test_a_quick_result_rides_with_the_next_poll() -> None:
    """Complete-and-take-next: the result of a task that ends at once goes in with the request for
    more work, one request where there were two (a report, then a poll)."""
    async with Harness(max_concurrency=2) as h:
        h.handler.open("t1")  # open before it starts: it ends at once
        h.hived.add_task("t1")
        await eventually(lambda: h.hived.result_of("t1"), what="t1's result")
        carrying = [r for r in h.hived.work_requests if r["results"]]
        assert len(carrying) == 1 and (carrying[0]["slots"], carrying[0]["wait"]) == (2, 5.0)
        assert len(h.hived.work_requests) == 2  # the poll that took t1, and the one that carried it


async def test_a_full_agent_asks_for_work_at_once_when_a_slot_frees(monkeypatch: Any) -> None:
    """hived answers a full agent's quiet poll (slots=0) when its result frees a slot: that early,
    empty answer means "ask again", not "hived is shutting down, back off" (it paused, and an agent
    that was full fell behind its peers)."""
    monkeypatch.setattr(runtime, "EMPTY_POLL_PAUSE", 30.0)
    monkeypatch.setattr(runtime, "EMPTY_POLL_PAUSE_MAX", 30.0)
    async with Harness(max_concurrency=1) as h:
        h.hived.add_task("t1")
        await eventually(lambda: h.handler.started == ["t1"], what="t1 started")
        await eventually(lambda: h.hived.open_polls == 1 and h.hived.asking == 0, what="a quiet poll")
        h.handler.open("t1")
        await eventually(lambda: h.hived.result_of("t1"), what="t1's result")
        h.hived.add_task("t2")
        await eventually(lambda: h.handler.started == ["t1", "t2"], what="t2 started, with no pause")


async def test_a_burst_of_results_goes_in_one_request() -> None:
    async with Harness(max_concurrency=4) as h:
        for task_id in ("a", "b", "c"):
            h.hived.add_task(task_id)
        await eventually(lambda: len(h.handler.started) == 3, what="three started")
        await eventually(lambda: h.hived.open_polls == 1, what="a long-poll for the last slot")
        h.handler.open("a", "b", "c")
        await eventually(lambda: len(h.hived.results) == 3, what="three results")
        carrying = [r for r in h.hived.work_requests if r["results"]]
        assert len(carrying) == 1 and len(carrying[0]["results"]) == 3


async def test_a_busy_agent_keeps_one_quiet_poll_open_and_hands_its_result_in() -> None:
    async with Harness(max_concurrency=1) as h:
        h.hived.add_task("t1")
        await eventually(lambda: h.handler.started == ["t1"], what="t1 started")
        await eventually(lambda: len(h.hived.heartbeats) >= 3, what="a few heartbeats")
        busy_polls = [r for r in h.hived.work_requests if r["slots"] == 0 and not r["results"]]
        assert len(busy_polls) == 1 and busy_polls[0]["wait"] == 5.0  # one poll held open, no spinning
        assert h.hived.heartbeats[-1]["running"] == ["t1"]
        h.handler.open("t1")
        await eventually(lambda: h.hived.result_of("t1"), what="t1's result")


async def test_more_leases_than_free_slots_are_all_started() -> None:
    async with Harness(max_concurrency=2) as h:
        h.hived.queue = [
            {"task_id": t, "attempt": 1, "lease": 1, "type": "t", "payload": {}} for t in ("a", "b")
        ]
        h.hived.new_work.set()
        await eventually(lambda: len(h.handler.started) == 2)
        h.hived.add_task("c")  # hived believes a slot is free; the agent takes what it is given
        h.handler.open("a")
        await eventually(lambda: "c" in h.handler.started, what="c started")
        h.handler.open("b", "c")
        await eventually(lambda: len(h.hived.results) == 3, what="three results")
        assert h.handler.most_at_once <= 2


async def test_results_are_kept_while_hived_is_unreachable() -> None:
    async with Harness(max_concurrency=1, poll_wait=0.2) as h:
        h.hived.add_task("t1")
        await eventually(lambda: h.handler.started == ["t1"])
        h.hived.down = True
        h.handler.open("t1")
        await eventually(lambda: h.hived.failed_connections >= 4, what="failed attempts to report")
        assert h.runtime.outbox.task_ids() == {"t1"} and h.hived.results == []
        assert not h.exit.done()  # type: ignore[union-attr]
        h.hived.down = False
        await eventually(lambda: h.hived.results, timeout=6, what="the result after the outage")
        assert [r["task_id"] for r in h.hived.results] == ["t1"]
        await eventually(lambda: not len(h.runtime.outbox), what="an empty outbox")


async def test_a_cancel_from_a_heartbeat_stops_the_attempt() -> None:
    async with Harness() as h:
        h.hived.add_task("t1")
        await eventually(lambda: h.handler.started == ["t1"])
        h.hived.cancels = ["t1"]
        result = await eventually(lambda: h.hived.result_of("t1"), what="the cancelled result")
        assert (result["ok"], result["reason"], result["error"]) == (False, "cancelled", "cancelled")


async def test_a_refused_result_is_dropped() -> None:
    async with Harness(poll_wait=0.2) as h:
        h.hived.refuse = {"t1"}
        h.hived.add_task("t1")
        await eventually(lambda: h.handler.started == ["t1"])
        h.handler.open("t1")
        await eventually(lambda: any(r["results"] for r in h.hived.work_requests), what="the report")
        await eventually(lambda: not len(h.runtime.outbox), what="an empty outbox")
        sent = [r for req in h.hived.work_requests for r in req["results"]]
        assert len(sent) == 1


async def test_a_draining_agent_asks_for_no_work_but_hands_in_results() -> None:
    async with Harness(max_concurrency=2) as h:
        h.hived.add_task("t1")
        await eventually(lambda: h.handler.started == ["t1"])
        h.hived.status = "draining"
        h.hived.new_work.set()  # end the open long-poll: its answer says draining
        await eventually(lambda: h.runtime.free_slots() == 0, what="the agent to see draining")
        asked = len(h.hived.work_requests)
        h.handler.open("t1")
        result = await eventually(lambda: h.hived.result_of("t1"), what="t1's result")
        assert result["ok"]
        later = h.hived.work_requests[asked:]
        assert later and all(r["slots"] == 0 for r in later)
        h.hived.status = "active"
        h.hived.add_task("t2")
        await eventually(lambda: "t2" in h.handler.started, what="work again after draining")


async def test_stop_interrupts_running_attempts_and_reports_them() -> None:
    async with Harness(max_concurrency=2) as h:
        h.hived.add_task("t1")
        h.hived.add_task("t2")
        await eventually(lambda: len(h.handler.started) == 2)
        h.runtime.stopping.set()
        assert await asyncio.wait_for(h.exit, 10) == 0  # type: ignore[arg-type]
        assert h.handler.stopped == {"t1": "interrupted", "t2": "interrupted"}
        reasons = {r["task_id"]: (r["ok"], r["reason"], r["error"]) for r in h.hived.results}
        interrupted = (False, "interrupted", "interrupted: the agent is stopping")
        assert reasons == {"t1": interrupted, "t2": interrupted}


async def test_disowned_by_hived_the_agent_stops_its_handlers_and_exits_0() -> None:
    async with Harness() as h:
        h.hived.add_task("t1")
        await eventually(lambda: h.handler.started == ["t1"])
        h.hived.gone = True
        assert await asyncio.wait_for(h.exit, 10) == 0  # type: ignore[arg-type]
        assert h.handler.stopped == {"t1": "interrupted"}
        assert h.hived.results == []


async def test_a_request_hived_refuses_for_good_exits_1() -> None:
    h = Harness()
    h.runtime.session.incarnation = -5

    class Refusing:
        async def post(self, path: str, payload: Any, timeout: float | None = None) -> Response:
            return reply(422, {"detail": "incarnation: must be >= 0"})

        async def close(self) -> None:
            pass

    h.conn.client = Refusing()  # type: ignore[assignment]
    async with h:
        assert await asyncio.wait_for(h.exit, 10) == 1  # type: ignore[arg-type]


# --- outbox and connection ------------------------------------------------------------------------


def result(task_id: str, lease: int = 1) -> AttemptResult:
    return AttemptResult(task_id=task_id, attempt=1, lease=lease, ok=True)


def test_outbox_sends_each_result_once_until_acknowledged() -> None:
    box = Outbox()
    box.add(result("a"))
    box.add(result("b"))
    first = box.take()
    assert [r.task_id for r in first] == ["a", "b"] and box.take() == []
    box.add(result("c"))
    assert [r.task_id for r in box.take()] == ["c"]
    box.release(first)  # that request failed
    assert box.has_waiting()
    again = box.take()
    refused = box.settle(
        again, [ResultAck(task_id="a", accepted=True), ResultAck(task_id="b", accepted=False)]
    )
    assert [ack.task_id for ack in refused] == ["b"]
    assert box.task_ids() == {"c"}
    box.settle([], [])
    assert not box.has_waiting()  # c is still out in its own request


def test_outbox_keeps_two_leases_of_one_task_apart() -> None:
    box = Outbox()
    box.add(result("a", lease=1))
    box.add(result("a", lease=2))
    assert len(box) == 2 and box.task_ids() == {"a"}


def test_backoff_doubles_to_five_seconds() -> None:
    delays = [0.1]
    for _ in range(8):
        delays.append(next_backoff(delays[-1]))
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]


@pytest.mark.parametrize(
    ("answers", "outcome"),
    [
        ([503, 500, 200], "ok"),
        ([404], AgentGone),
        ([409], AgentGone),
        ([422], Refused),
        ([401], Refused),
    ],
)
async def test_connection_answers(answers: list[int], outcome: Any) -> None:
    remaining = list(answers)

    class Answers:
        async def post(self, path: str, payload: Any, timeout: float | None = None) -> Response:
            code = remaining.pop(0)
            if code == 200:
                return reply(200, {"status": "active", "heartbeat_interval": 1.0})
            return reply(code, {"detail": f"answer {code}"})

        async def close(self) -> None:
            pass

    conn = Connection(Endpoint(socket=Path("/nonexistent.sock")))
    conn.client = Answers()  # type: ignore[assignment]
    from hivectl.agent.wire import HeartbeatRequest

    try:
        if outcome == "ok":
            beat = await conn.heartbeat(AGENT, HeartbeatRequest(incarnation=1))
            assert beat.status == "active" and remaining == []
        else:
            with pytest.raises(outcome, match="answer"):
                await conn.heartbeat(AGENT, HeartbeatRequest(incarnation=1))
    finally:
        await conn.aclose()


async def test_connection_retries_only_until_a_deadline(tmp_path: Path) -> None:
    conn = Connection(Endpoint(socket=tmp_path / "missing.sock"))
    from hivectl.agent.wire import WorkRequest

    started = time.monotonic()
    try:
        with pytest.raises(TransportError, match="No such file"):
            await conn.work(AGENT, WorkRequest(incarnation=1, slots=0, wait=0), deadline=started + 0.5)
    finally:
        await conn.aclose()
    assert time.monotonic() - started < 1.0
