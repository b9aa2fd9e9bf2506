"""Events across nodes when a node's notification connection drops (hived.nodes.relay): what a node
could not send is sent when it is back, what it missed is sent again by the others on its asking,
and every event is published once on the receiving bus, even when a replay overlaps newer events."""

from __future__ import annotations

import asyncio
from typing import Any

from hived.events import AgentStatusChanged, EventBus
from hived.nodes.relay import Relay, Taken


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
    mark[0], a._skipped = bus_a.last_id, False
    bus_a.publish(status("w2"))  # after it: beta may have been up already
    await until(lambda: a._skipped, "w2 skipped")
    assert wire_a.sent == [] and heard(bus_b, "alpha") == []
    others[0] = 1  # a heartbeat sees beta
    bus_a.publish(status("w3"))
    await until(lambda: sorted(heard(bus_b, "alpha")) == ["w2", "w3"], "w2 and w3 on beta")
    bus_a.publish(status("w4"))
    await until(lambda: sorted(heard(bus_b, "alpha")) == ["w2", "w3", "w4"], "w4 on beta")
    assert not a._skipped
    await a.stop()
    await b.stop()
