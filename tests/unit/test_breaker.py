from hived.agents.breaker import Breaker, Circuit


def test_opens_after_threshold_then_probes_once() -> None:
    b = Breaker(threshold=3, cooldown=10)
    for t in range(2):
        b.record(False, now=t)
    assert b.state(2) is Circuit.CLOSED and b.capacity(2, 4) == 4
    b.record(False, now=2)
    assert b.state(3) is Circuit.OPEN and b.capacity(3, 4) == 0
    assert b.state(12) is Circuit.HALF_OPEN and b.capacity(12, 4) == 1
    b.on_assigned(12)
    assert b.capacity(12.5, 4) == 0  # one probe at a time


def test_failed_probe_reopens_and_success_closes() -> None:
    b = Breaker(threshold=1, cooldown=5)
    b.record(False, now=0)
    b.on_assigned(6)
    b.record(False, now=7)
    assert b.state(8) is Circuit.OPEN
    b.on_assigned(13)
    b.record(True, now=13)
    assert b.state(13) is Circuit.CLOSED and b.consecutive_failures == 0


def test_success_resets_the_count() -> None:
    b = Breaker(threshold=2)
    b.record(False, 0)
    b.record(True, 1)
    b.record(False, 2)
    assert b.state(3) is Circuit.CLOSED
