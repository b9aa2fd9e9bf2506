"""The audit line of a change through the socket: once per window for the same call, the repeats
counted and summed up when the window ends (hived/auth/audit.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from hived.auth.audit import AuditLog, Call, Repeats

SUBMIT = Call("POST", "/tasks", 1000, 4242)
OTHER_PID = Call("POST", "/tasks", 1000, 4243)
CANCEL = Call("PUT", "/tasks/t1/cancel", 1000, 4242)


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([(SUBMIT, 0.0)], [(True, 0)]),
        ([(SUBMIT, 0.0), (SUBMIT, 1.0), (SUBMIT, 9.9)], [(True, 0), (False, 0), (False, 0)]),
        # the next window: its first call is logged, with the count of the window before
        (
            [(SUBMIT, 0.0), (SUBMIT, 1.0), (SUBMIT, 2.0), (SUBMIT, 10.0)],
            [(True, 0), (False, 0), (False, 0), (True, 2)],
        ),
        ([(SUBMIT, 0.0), (SUBMIT, 10.5)], [(True, 0), (True, 0)]),  # no repeats: nothing to sum up
        # another process, another path: lines of their own
        (
            [(SUBMIT, 0.0), (OTHER_PID, 0.1), (CANCEL, 0.2), (SUBMIT, 0.3)],
            [(True, 0), (True, 0), (True, 0), (False, 0)],
        ),
    ],
)
def test_repeats_log_the_first_call_of_a_window(
    calls: list[tuple[Call, float]], expected: list[tuple[bool, int]]
) -> None:
    repeats = Repeats(window=10.0)
    assert [repeats.seen(call, now) for call, now in calls] == expected


def test_due_gives_the_ended_windows_with_repeats_and_forgets_them() -> None:
    repeats = Repeats(window=10.0)
    for call, now in [
        (SUBMIT, 0.0),
        (SUBMIT, 1.0),
        (SUBMIT, 2.0),
        (CANCEL, 3.0),
        (OTHER_PID, 5.0),
        (OTHER_PID, 6.0),
    ]:
        repeats.seen(call, now)
    assert repeats.next_end() == 0.0
    assert repeats.due(9.0) == []
    assert repeats.due(13.0) == [(SUBMIT, 2)]  # CANCEL's window ended too, without repeats
    assert set(repeats.open) == {OTHER_PID}
    assert repeats.due(14.0, everything=True) == [(OTHER_PID, 1)]
    assert repeats.open == {} and repeats.next_end() is None


class Timers:
    """call_later's stand-in: what was asked, run by hand."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, Callable[[], None], Any]] = []

    def __call__(self, delay: float, fn: Callable[[], None]) -> Any:
        handle = Handle()
        self.pending.append((delay, fn, handle))
        return handle

    def fire(self) -> float:
        delay, fn, handle = self.pending.pop(0)
        assert not handle.cancelled
        fn()
        return delay


class Handle:
    cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hived.api"]


def test_a_burst_is_one_line_then_its_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hived.api")
    now = [100.0]
    timers = Timers()
    audit = AuditLog(window=10.0, clock=lambda: now[0], call_later=timers)
    for i in range(500):
        now[0] = 100.0 + i * 0.001
        audit.changed("POST", "/tasks", 1000, 4242)
    audit.changed("PUT", "/tasks/t1/cancel", 1000, 4242)
    assert lines(caplog) == [
        "POST /tasks by uid 1000 (pid 4242)",
        "PUT /tasks/t1/cancel by uid 1000 (pid 4242)",
    ]
    assert len(timers.pending) == 1  # one timer, for the first window's end
    now[0] = 110.0
    assert timers.fire() == pytest.approx(10.0, abs=0.01)
    assert lines(caplog)[2:] == ["POST /tasks by uid 1000 (pid 4242): 499 more in 10s"]
    now[0] = 110.6
    assert timers.fire() == pytest.approx(0.5, abs=0.01)  # the cancel's window, open a bit longer
    assert len(lines(caplog)) == 3  # it had no repeats: no line
    assert timers.pending == []  # nothing open is left: no timer


def test_shutdown_writes_the_open_counts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hived.api")
    timers = Timers()
    audit = AuditLog(window=10.0, clock=lambda: 5.0, call_later=timers)
    for _ in range(3):
        audit.changed("POST", "/agents/a1/work", 0, 77)
    audit.flush(everything=True)
    assert lines(caplog) == [
        "POST /agents/a1/work by uid 0 (pid 77)",
        "POST /agents/a1/work by uid 0 (pid 77): 2 more in 10s",
    ]
    assert timers.pending[0][2].cancelled  # the window's timer is not left to fire


def test_a_new_window_goes_to_the_back_so_the_ended_ones_are_at_the_front() -> None:
    repeats = Repeats(window=10.0)
    repeats.seen(SUBMIT, 0.0)
    repeats.seen(CANCEL, 5.0)
    repeats.seen(SUBMIT, 11.0)  # SUBMIT's second window: after CANCEL's
    repeats.seen(SUBMIT, 12.0)
    assert list(repeats.open) == [CANCEL, SUBMIT] and repeats.next_end() == 5.0
    assert repeats.due(15.0) == []  # CANCEL's ended without repeats; SUBMIT's has not
    assert list(repeats.open) == [SUBMIT]
    assert repeats.due(21.0) == [(SUBMIT, 1)]
