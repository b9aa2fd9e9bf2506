"""The pure parts of hivectl's client: SSE decoding, the one validation-error formatter, the poll
schedule and the patience with an unreachable hived, where a dropped stream resumes, and the sync
and async clients offering the same methods with the same parameters."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from hivectl.client import ApiError, AsyncClient, Client, DaemonUnreachable, NotAuthorized, WaitTimeout
from hivectl.client.errors import format_errors
from hivectl.client.polling import Patience, Poll, resume_after
from hivectl.client.sse import Event, SseDecoder


def decode(lines: list[str]) -> list[Event]:
    decoder = SseDecoder()
    return [event for line in lines if (event := decoder.feed(line)) is not None]


def test_sse_events_comments_and_multi_line_data() -> None:
    lines = [": hived events", "", "id: 7", "event: task.completed", 'data: {"id": 7,', 'data: "x": 1}', ""]
    lines += [": keep-alive", "", 'data: {"id": 8, "kind": "agent.status"}', ""]
    assert decode(lines) == [
        Event(7, "task.completed", {"id": 7, "x": 1}),
        Event(7, "agent.status", {"id": 8, "kind": "agent.status"}),  # the last id: stays, per the spec
    ]


@pytest.mark.parametrize(
    ("errors", "names", "unnamed", "line"),
    [
        ([{"loc": ["body", "priority"], "msg": "too big"}], None, "", "priority: too big"),
        ([{"loc": ["query", "limit"], "msg": "Value error, bad"}], None, "", "limit: bad"),
        ([{"loc": ["retry", "max"], "msg": "m"}, {"loc": [], "msg": "n"}], None, "", "retry.max: m; n"),
        (
            [{"loc": ["payload"], "msg": "not an object"}],
            {"payload": "--payload"},
            "",
            "--payload: not an object",
        ),
        ([{"loc": [], "msg": "Value error, one handler"}], {}, "value", "value: one handler"),
        (["plain text"], None, "", "plain text"),
    ],
)
def test_one_formatter_for_validation_errors(
    errors: list[Any], names: dict[str, str] | None, unnamed: str, line: str
) -> None:
    assert format_errors(errors, names, unnamed) == line


def test_poll_backs_off_resets_on_change_and_ends_at_its_timeout() -> None:
    poll = Poll("task t", started=100.0, timeout=5.0)
    delays = [poll.next_delay(changed, 100.0) for changed in (False, False, False, True, False)]
    assert delays == pytest.approx([0.1, 0.15, 0.225, 0.1, 0.15])
    assert Poll("x", 0.0, maximum=1.0).next_delay(False, 0.0) == 0.1
    assert poll.next_delay(False, 104.95) == pytest.approx(0.05)  # never sleeps past the deadline
    with pytest.raises(WaitTimeout, match="task t did not end within 5s"):
        poll.next_delay(False, 105.0)


def test_patience_rides_out_an_outage_once_said_then_gives_up() -> None:
    said: list[str] = []
    patience = Patience(patience=10.0, notice=said.append)
    down = DaemonUnreachable("cannot reach hived")
    assert patience.retry_in(down, 0.0) == 1.0
    assert patience.retry_in(ApiError(503, "database unavailable"), 9.0) == 1.0
    assert said == ["cannot reach hived; still waiting (up to 10s)"]
    with pytest.raises(DaemonUnreachable):
        patience.retry_in(down, 10.5)
    patience.recovered()
    assert patience.retry_in(down, 50.0) == 1.0  # a new outage, a new allowance
    for final in (ApiError(404, "no such task"), NotAuthorized("no")):
        with pytest.raises(type(final)):
            patience.retry_in(final, 50.0)


@pytest.mark.parametrize(
    ("last_seen", "daemon_last", "resume"),
    [(None, 5, None), (5, 5, 5), (5, 9, 5), (50, 3, 0)],
    ids=["nothing-seen", "same-daemon", "events-meanwhile", "restarted"],
)
def test_where_a_dropped_stream_resumes(last_seen: int | None, daemon_last: int, resume: int | None) -> None:
    assert resume_after(last_seen, daemon_last) == resume


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


def test_the_sync_and_async_clients_have_the_same_methods() -> None:
    sync, aio = public_methods(Client), public_methods(AsyncClient)
    assert set(sync) - {"close"} == set(aio) - {"aclose"}
    for name in set(sync) & set(aio):
        assert list(sync[name].parameters) == list(aio[name].parameters), name


def test_a_long_poll_asks_hived_to_hold_at_most_what_is_left() -> None:
    from hivectl.client.polling import LONG_POLL

    poll = Poll("task t", started=100.0, timeout=30.0)
    assert poll.long_wait(100.0) == LONG_POLL
    assert poll.long_wait(125.0) == 5.0
    with pytest.raises(WaitTimeout, match="did not end within 30s"):
        poll.long_wait(130.0)
    assert Poll("task t", started=0.0).long_wait(1e9) == LONG_POLL  # no timeout: wait on and on


def test_a_watch_waits_for_changes_and_pauses_only_after_early_empty_answers() -> None:
    from hivectl.client.polling import LONG_POLL, Watch

    watch = Watch(Poll("run r", started=0.0, timeout=100.0))
    assert watch.wait(0.0) == LONG_POLL
    assert Watch(Poll("run r", 0.0), refresh=1.0).wait(5.0) == 1.0  # a live table redraws its clocks
    assert watch.wait(95.0) == 5.0
    with pytest.raises(WaitTimeout):
        watch.wait(100.0)
    assert watch.pause(same=False, asked=0.0, wait=20.0, now=0.01) == 0.0  # a change: ask again now
    assert watch.pause(same=True, asked=0.0, wait=20.0, now=20.0) == 0.0  # the deadline: ask again now
    # the same answer, early (hived does not drive the run at this moment): back off, as a poll does
    assert [watch.pause(True, 0.0, 20.0, 0.01) for _ in range(3)] == pytest.approx([0.1, 0.15, 0.225])
    assert watch.pause(same=False, asked=0.0, wait=20.0, now=0.01) == 0.0
    assert watch.pause(True, 0.0, 20.0, 0.01) == 0.1  # the backoff starts again after a change
