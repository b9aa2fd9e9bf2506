"""Events across nodes when a node's notification connection drops (hived.nodes.relay): what a node
could not send is sent when it is back, what it missed is sent again by the others on its asking,
and every event is published once on the receiving bus, even when a replay overlaps newer events.
A node alone (no other node up at its last heartbeat) sends neither its events nor its news of work."""

from __future__ import annotations

import asyncio
from typing import Any

from hived.events import AgentStatusChanged, EventBus, TaskSubmitted
from hived.nodes.relay import Relay, Taken
from hived.nodes.sharing import Sharing


class Switchboard:
    """LISTEN/NOTIFY in memory: a notification reaches every other node whose wire is up."""

    def __init__(self) -> None:
        self.wires: list[FakeWire] = []


class FakeWire:
    def __init__(self, board: Switchboard, node: str) -> None:
        self.board, self.node, self.up = board, node, True
        self.handlers: dict[str, Any] = {}
        self.on_reconnect: list[Any] = []
        self.sent: list[str] = []  # kinds sent while up
        board.wires.append(self)

    def on(self, kind: str, handler: Any) -> None:
        self.handlers[kind] = handler

    async def send(self, kind: str, body: dict[str, Any]) -> bool:
        if not self.up:
            return False
        self.sent.append(kind)
        for wire in self.board.wires:
            if wire is not self and wire.up and kind in wire.handlers:
                wire.handlers[kind](self.node, body)
        return True

    def reconnect(self) -> None:
        self.up = True
        for callback in self.on_reconnect:
            callback()


def node(board: Switchboard, name: str) -> tuple[Relay, FakeWire, EventBus]:
    wire, bus = FakeWire(board, name), EventBus()
    relay = Relay(None, wire, bus, lambda task_id: False)  # type: ignore[arg-type]
    relay.start()
    return relay, wire, bus


def status(agent: str) -> AgentStatusChanged:
    return AgentStatusChanged(agent, f"id-{agent}", "active", "starting", None)


def heard(bus: EventBus, sender: str) -> list[str]:
    return [
        e.data["agent"] for e in bus.since(0) if e.kind == "agent.status" and e.data.get("node") == sender
    ]


async def until(predicate: Any, what: str) -> None:
    async with asyncio.timeout(5):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_a_receiver_that_was_away_gets_what_it_missed_once() -> None:
    board = Switchboard()
    a, wire_a, bus_a = node(board, "alpha")
    b, wire_b, bus_b = node(board, "beta")
    bus_a.publish(status("w1"))
    await until(lambda: heard(bus_b, "alpha") == ["w1"], "w1 on beta")
    wire_b.up = False
    bus_a.publish(status("w2"))  # beta misses it
    await until(lambda: wire_a.sent.count("events") == 2, "w2 sent by alpha")
    wire_b.reconnect()
    bus_a.publish(status("w3"))  # newer than the replay beta asks for
    await until(lambda: sorted(heard(bus_b, "alpha")) == ["w1", "w2", "w3"], "w2 replayed on beta")
    await until(lambda: not a._reading and not b._reading, "the replay sent")  # duplicates would be in
    assert sorted(heard(bus_b, "alpha")) == ["w1", "w2", "w3"] and "replay" in wire_b.sent
    await a.stop()
    await b.stop()


async def test_a_sender_that_was_away_sends_what_it_could_not() -> None:
    board = Switchboard()
    a, wire_a, bus_a = node(board, "alpha")
    b, _wire_b, bus_b = node(board, "beta")
    wire_a.up = False
    bus_a.publish(status("w1"))
    await until(lambda: a.unsent_after is not None, "alpha noted what it could not send")
    assert heard(bus_b, "alpha") == []
    wire_a.reconnect()
    await until(lambda: heard(bus_b, "alpha") == ["w1"], "w1 on beta after alpha is back")
    assert a.unsent_after is None
    await a.stop()
    await b.stop()


def test_taken_ids_once_each_in_any_order_and_forgets_old_ones() -> None:
    taken = Taken("boot")
    assert [taken.take(i) for i in (5, 3, 5, 9, 3)] == [True, True, False, True, False]
    assert taken.last == 9
    taken.KEEP = 2
    assert taken.take(10)  # 5 is forgotten: everything up to 5 counts as taken
    assert not taken.take(4) and taken.floor >= 3


async def test_a_node_alone_sends_nothing_and_a_node_that_joins_gets_what_came_after_its_last_look() -> None:
    board = Switchboard()
    a, wire_a, bus_a = node(board, "alpha")
    b, _wire_b, bus_b = node(board, "beta")
    others, mark = [0], [0]
    a.peers, a.alone_mark = lambda: others[0], lambda: mark[0]
    bus_a.publish(status("w1"))  # before the last heartbeat that found nobody: no one needs it
    await until(lambda: a._skipped, "w1 skipped")
    mark[0] = bus_a.last_id
    bus_a.publish(status("w2"))  # after it: beta may have been up already
    await a.beat()  # a heartbeat that still finds nobody: the relay looks, and waits for the next
    await until(lambda: not a._beat.is_set(), "the relay looked")
    assert wire_a.sent == [] and heard(bus_b, "alpha") == []
    others[0] = 1
    await a.beat()  # a heartbeat sees beta: what came after the mark is sent now
    await until(lambda: heard(bus_b, "alpha") == ["w2"], "w2 on beta")
    bus_a.publish(status("w3"))
    await until(lambda: sorted(heard(bus_b, "alpha")) == ["w2", "w3"], "w3 on beta")
    bus_a.publish(status("w4"))
    await until(lambda: sorted(heard(bus_b, "alpha")) == ["w2", "w3", "w4"], "w4 on beta")
    assert not a._skipped
    await a.stop()
    await b.stop()


async def test_a_node_alone_announces_no_work_and_announces_it_once_another_is_up() -> None:
    board = Switchboard()
    wire, bus = FakeWire(board, "alpha"), EventBus()
    heard_work: list[str] = []
    FakeWire(board, "beta").on("work", lambda sender, _body: heard_work.append(sender))
    sharing = Sharing(None, None, wire, bus)  # type: ignore[arg-type]
    others = [0]
    sharing.peers = lambda: others[0]
    announcing = asyncio.ensure_future(sharing._announce_loop())  # (its other loop needs a dispatcher)
    bus.publish(TaskSubmitted(task_id="t1", type="noop", priority=0))
    await until(lambda: not sharing._news.is_set(), "the submit seen")
    assert wire.sent == [] and heard_work == []
    others[0] = 1
    bus.publish(TaskSubmitted(task_id="t2", type="noop", priority=0))
    await until(lambda: heard_work == ["alpha"], "work announced to beta")
    announcing.cancel()
