"""The sync handlers' threads: reused one call after another, never a wait for a busy one (a call
abandoned at its timeout keeps its thread), daemons, and gone after being idle."""

from __future__ import annotations

import threading
import time

from hivectl.agent.threads import DaemonThreads


def wait_until(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_calls_one_after_another_reuse_one_thread() -> None:
    pool = DaemonThreads()
    seen: list[int] = []
    for _ in range(20):
        done = threading.Event()
        pool.submit(lambda done=done: (seen.append(threading.get_ident()), done.set()))
        assert done.wait(5)
        wait_until(lambda: pool._idle == 1)  # back to waiting before the next call
    assert pool.started == 1 and len(set(seen)) == 1
    assert all(t.daemon for t in threading.enumerate() if t.name == "handler")


def test_a_call_never_waits_for_a_stuck_one() -> None:
    pool = DaemonThreads()
    stuck = threading.Event()
    pool.submit(stuck.wait)  # abandoned: it never returns while the test runs
    done = threading.Event()
    pool.submit(done.set)
    assert done.wait(5)
    assert pool.started == 2
    stuck.set()


def test_idle_threads_end() -> None:
    pool = DaemonThreads(idle_timeout=0.05, name="short-lived")
    done = threading.Event()
    pool.submit(done.set)
    assert done.wait(5)
    wait_until(lambda: not any(t.name == "short-lived" for t in threading.enumerate()))
    assert pool._idle == 0
    again = threading.Event()
    pool.submit(again.set)  # a new thread starts
    assert again.wait(5) and pool.started == 2
