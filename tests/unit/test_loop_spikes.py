"""The event loop's spikes under hardening items 1, 2 and 18 (bench/abuse.py measures them): the
watchdog that finds them, the shared blocks that replay the `/events` backlog, the lean `/events`
path, the warm-up before serving, and CEL evaluated in slices. Ordering and events only: no clock."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from hived import slices
from hived.events import BLOCK, EventBus, TaskSubmitted
from hived.http.sse import EventStream, LeanEvents, StreamLimits, plain_query
from hived.http.warm import warm_routes
from hived.model.expressions import ExpressionError, evaluate, is_true
from hived.watchdog import LoopWatchdog, Stall, Watch, threshold_from_env

QUADRATIC = "params.l.all(x, params.l.all(y, x + y >= 0))"

# --- the watchdog ---------------------------------------------------------------------------------


def test_watch_flags_a_wait_over_its_threshold_once_and_reports_it_when_answered() -> None:
    watch = Watch(threshold=0.1)
    watch.ping(10.0)
    assert not watch.overdue(10.05)
    assert watch.overdue(10.2)  # the moment to take the stack
    assert not watch.overdue(10.25)  # once per ping
    stall = watch.pong(10.3)
    assert stall is not None and stall.waited == pytest.approx(0.3)


def test_watch_is_quiet_for_a_quick_answer_and_without_a_ping() -> None:
    watch = Watch(threshold=0.1)
    assert watch.pong(1.0) is None
    watch.ping(1.0)
    assert watch.pong(1.05) is None
    assert not watch.overdue(5.0)  # answered: nothing is waiting


@pytest.mark.parametrize(
    ("raw", "seconds"), [("", None), ("  ", None), ("50", 0.05), ("2.5", 0.0025), ("1000", 1.0)]
)
def test_watchdog_threshold_from_env(raw: str, seconds: float | None) -> None:
    assert threshold_from_env({"HIVE_LOOP_WATCHDOG": raw}) == seconds


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "nan", "1e12"])
def test_watchdog_threshold_refused_names_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="HIVE_LOOP_WATCHDOG"):
        threshold_from_env({"HIVE_LOOP_WATCHDOG": raw})


def test_the_watchdog_reports_the_stack_of_what_held_the_loop() -> None:
    """A clock that moves a second at each look: every wait is over the threshold. The loop is held
    by a callback until the watchdog has looked at it; its report names that callback."""
    ticks = iter(range(10**6))
    reports: list[Stall] = []
    reported = threading.Event()
    holding = threading.Event()
    looked = threading.Event()

    def report(stall: Stall) -> None:
        reports.append(stall)
        reported.set()

    class Seen(LoopWatchdog):
        def _take_stack(self) -> None:
            holding.wait(30)  # (on a busy machine the first look may come before the loop is held)
            super()._take_stack()
            looked.set()

    async def main() -> None:
        dog = Seen(asyncio.get_running_loop(), 0.02, report, clock=lambda: float(next(ticks)))

        def held_by_the_test() -> None:
            holding.set()
            looked.wait(30)  # the loop's thread stays here until the watchdog took its stack

        asyncio.get_running_loop().call_soon(held_by_the_test)
        dog.start()
        await asyncio.sleep(0)
        while not reported.is_set():
            await asyncio.sleep(0.001)
        dog.stop()

    asyncio.run(main())
    assert any("held_by_the_test" in stall.stack for stall in reports)


# --- the /events backlog in shared blocks -----------------------------------------------------------


def bus_with(events: int, capacity: int = 10_000) -> EventBus:
    bus = EventBus(capacity=capacity)

    async def publish() -> None:
        for i in range(events):
            bus.publish(TaskSubmitted(f"t{i}", "t", 5))

    asyncio.run(publish())
    return bus


def frames(bus: EventBus, after: int, upto: int) -> bytes:
    return b"".join(e.frame for e in bus.since(after) if e.id <= upto)


def test_block_after_joins_each_whole_block_once_for_every_stream() -> None:
    bus = bus_with(2 * BLOCK + BLOCK // 2)
    first = bus.block_after(0)
    assert first is not None and first == (frames(bus, 0, BLOCK), BLOCK)
    again = bus.block_after(0)
    assert again is not None and again[0] is first[0]  # shared, not joined again
    assert bus.block_after(BLOCK) == (frames(bus, BLOCK, 2 * BLOCK), 2 * BLOCK)


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (BLOCK // 2, (BLOCK // 2, BLOCK)),  # inside a block: the rest of it
        (2 * BLOCK, None),  # the block is not complete: the live path
        (2 * BLOCK + 10, None),
        (3 * BLOCK, None),  # nothing after it
    ],
)
def test_block_after_edges(position: int, expected: tuple[int, int] | None) -> None:
    bus = bus_with(2 * BLOCK + BLOCK // 2)
    got = bus.block_after(position)
    if expected is None:
        assert got is None
    else:
        assert got == (frames(bus, expected[0], expected[1]), expected[1])


def test_a_block_partly_dropped_from_the_log_is_not_served() -> None:
    bus = bus_with(2 * BLOCK + BLOCK // 2, capacity=2 * BLOCK)  # ids 501.. kept
    assert bus.block_after(0) is None
    assert bus.block_after(BLOCK) == (frames(bus, BLOCK, 2 * BLOCK), 2 * BLOCK)


def test_a_stream_replays_the_same_bytes_in_blocks_as_event_by_event() -> None:
    bus = bus_with(2 * BLOCK + 123)
    sent: list[bytes] = []

    async def main() -> None:
        whole = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message.get("body", b""))
            if b"id: %d\n" % bus.last_id in sent[-1]:
                whole.set()

        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()
            return {}

        stream = asyncio.ensure_future(EventStream(bus, StreamLimits(), 0, True)({}, receive, send))
        await whole.wait()
        stream.cancel()
        await asyncio.gather(stream, return_exceptions=True)

    asyncio.run(main())
    assert b"".join(sent) == b": hived events\n\n" + frames(bus, 0, bus.last_id)


def test_hundreds_of_streams_opened_at_once_leave_turns_to_others() -> None:
    """300 streams replaying 5,000 events: a coroutine started after them is done long before
    they are (the replay takes turns of the loop; it never holds it for all of them)."""
    bus = bus_with(5 * BLOCK)
    lean = LeanEvents(bus, StreamLimits(max_streams=1000))
    done: list[int] = []
    finished = 0
    order: list[str] = []

    async def main() -> None:
        nonlocal finished
        all_done = asyncio.Event()

        def sender(i: int) -> Any:
            async def send(message: dict[str, Any]) -> None:
                nonlocal finished
                if b"id: %d\n" % bus.last_id in message.get("body", b""):
                    done.append(i)
                    if len(done) == 300:
                        all_done.set()

            return send

        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()
            return {}

        scope = {"type": "http", "path": "/events", "query_string": b"", "headers": [], "state": {}}
        streams = [asyncio.ensure_future(lean(dict(scope), receive, sender(i))) for i in range(300)]

        async def probe() -> None:
            await asyncio.sleep(0)
            order.append(f"probe answered with {len(done)} streams replayed")

        await probe()
        await all_done.wait()
        order.append("all replayed")
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*streams, return_exceptions=True)

    asyncio.run(main())
    assert order[-1] == "all replayed" and len(done) == 300
    assert order[0].startswith("probe answered") and order[0] != "probe answered with 300 streams replayed"


@pytest.mark.parametrize(
    ("query", "read"),
    [
        (b"", (True, None)),
        (b"follow=false", (False, None)),
        (b"follow=1", (True, None)),
        (b"since=5", (True, 5)),
        (b"since=5&follow=0", (False, 5)),
        (b"since=-1", None),  # FastAPI's route answers these (422 naming the field, or its reading)
        (b"since=", None),
        (b"follow=True", None),
        (b"since=5&since=6", None),
        (b"other=1", None),
        (b"since=99999999999999999999", None),
        (b"since=9223372036854775807", None),  # over MAX_OFFSET
    ],
)
def test_plain_query_of_events(query: bytes, read: tuple[bool, int | None] | None) -> None:
    assert plain_query(query) == read


def test_per_turn_admits_its_places_in_each_turn_first_come_first_served() -> None:
    from hived.http.admission import PerTurn

    order: list[str] = []

    async def main() -> None:
        admission = PerTurn(2)

        async def one(i: int) -> None:
            await admission()
            order.append(f"start {i}")

        async def turns() -> None:
            for turn in range(5):
                order.append(f"turn {turn}")
                await asyncio.sleep(0)

        await asyncio.gather(turns(), *(one(i) for i in range(5)))

    asyncio.run(main())
    starts = [order.index(f"start {i}") for i in range(5)]
    assert starts == sorted(starts)  # in order
    # at most two starts between two turns
    between = [x for x in " ".join(order).split("turn") if x.strip()]
    assert all(chunk.count("start") <= 2 for chunk in between)
    assert sum(chunk.count("start") for chunk in between) == 5


# --- the socket's connections accepted in bursts -------------------------------------------------


def test_a_connection_behind_hundreds_made_at_once_is_accepted_within_a_few_turns(tmp_path: Any) -> None:
    """libuv accepts one connection per turn: the 201st waited 200 turns. Counted in turns."""
    import socket

    from hived.http.accept import BurstAcceptor

    path = str(tmp_path / "s.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1024)
    listener.setblocking(False)
    clients = []
    for _ in range(201):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(path)
        clients.append(client)
    made: list[int] = []
    transports: list[Any] = []
    turns = 0

    async def main() -> None:
        nonlocal turns
        everyone = asyncio.Event()

        class Counted(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                transports.append(transport)
                made.append(turns)
                if len(made) == len(clients):
                    everyone.set()

        acceptor = BurstAcceptor(listener, Counted)
        acceptor.start()
        while not everyone.is_set():
            turns += 1
            await asyncio.sleep(0)
        acceptor.close()
        await acceptor.wait_closed()
        for transport in transports:
            transport.close()
        await asyncio.sleep(0)

    try:
        asyncio.run(main())
    finally:
        for client in clients:
            client.close()
        listener.close()
    assert len(made) == 201
    assert made[-1] <= 5  # the last one in: a few turns, not one turn per connection before it


# --- the warm-up before serving ----------------------------------------------------------------


def test_warm_routes_matches_every_route_and_answers_404_without_middlewares() -> None:
    from hived.http.app import create_app

    orchestrator = SimpleNamespace(limits=SimpleNamespace(max_request_bytes=1), metrics=None)
    app = create_app(orchestrator, manage_lifecycle=False, lean=False)  # type: ignore[arg-type]
    assert asyncio.run(warm_routes(app)) == 404
    built = [r for r in app.router.routes if hasattr(r, "_effective_candidates_version")]
    assert all(r._effective_candidates_version is not None for r in built)  # FastAPI's lazy state


# --- CEL in slices --------------------------------------------------------------------------------


@pytest.fixture
def every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slices, "SLICE", 0.0)  # a pause at every call: ordering, not time


def test_a_sliced_evaluation_lets_the_loop_run_others_and_gives_the_same_answer(every_step: None) -> None:
    turns_seen = 0

    async def main() -> None:
        nonlocal turns_seen
        running = True

        async def other() -> None:
            nonlocal turns_seen
            while running:
                turns_seen += 1
                await asyncio.sleep(0)

        task = asyncio.ensure_future(other())
        with pytest.raises(ExpressionError, match="exceeded the evaluation budget"):
            await slices.sliced(is_true, QUADRATIC, {"params": {"l": list(range(1000))}})
        assert await slices.sliced(evaluate, "params.l.size()", {"params": {"l": [1, 2]}}) == 2
        running = False
        await task

    asyncio.run(main())
    assert turns_seen > 100  # 10,000 steps paused every 25: the other coroutine ran in between


def test_sliced_work_takes_turns_one_slice_at_a_time(every_step: None) -> None:
    order: list[str] = []

    def work(name: str) -> str:
        for _ in range(3):
            order.append(name)
            slices.pause()
        return name

    async def main() -> list[str]:
        return list(await asyncio.gather(*(slices.sliced(work, n) for n in "ab")))

    assert asyncio.run(main()) == ["a", "b"]
    assert sorted(order) == ["a", "a", "a", "b", "b", "b"]
    assert order[:3] != ["a", "a", "a"]  # b had a turn before a was through


def test_a_turn_of_the_loop_carries_one_slice_however_many_wait(every_step: None) -> None:
    order: list[str] = []

    def work(name: str) -> None:
        for _ in range(4):
            order.append(name)
            slices.pause()

    async def main() -> None:
        running = True

        async def ticker() -> None:
            while running:
                order.append("turn")
                await asyncio.sleep(0)

        tick = asyncio.ensure_future(ticker())
        await asyncio.gather(*(slices.sliced(work, n) for n in "abc"))
        running = False
        await tick

    asyncio.run(main())
    pairs = list(zip(order, order[1:], strict=False))
    slices_back_to_back = [p for p in pairs if "turn" not in p]
    assert order.count("a") == order.count("b") == order.count("c") == 4
    assert len(slices_back_to_back) <= 2  # the first slices only: each later one has a turn of its own


def test_pause_outside_a_slice_does_nothing() -> None:
    slices.pause()
    assert evaluate("[1, 2, 3].all(x, x > 0)", {}) is True
