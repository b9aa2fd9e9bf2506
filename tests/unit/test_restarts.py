"""The restart policy (hived.agents.restarts): stop, fail or restart; growing delays; the limit in a
window; a stable incarnation starts the delays over; an operator's restart resets the count."""

from __future__ import annotations

import pytest

from hived.agents.restarts import Restarts
from hived.model.schemas import RestartPolicy


def policy(**kw: object) -> RestartPolicy:
    return RestartPolicy.model_validate(kw)


@pytest.mark.parametrize(
    ("kind", "clean", "unhealthy", "action"),
    [
        ("never", True, False, "stop"),
        ("never", False, False, "fail"),
        ("on-failure", True, False, "stop"),
        ("on-failure", False, False, "restart"),
        ("on-failure", True, True, "restart"),  # killed for silence: a failure even if it exited 0
        ("always", True, False, "restart"),
    ],
)
def test_what_follows_an_exit(kind: str, clean: bool, unhealthy: bool, action: str) -> None:
    verdict = Restarts(rand=lambda: 0.5).after_exit(policy(policy=kind), clean, unhealthy, 0.0, 5.0)
    assert verdict.action == action


def test_delays_double_to_the_cap_then_the_limit_fails_it() -> None:
    restarts = Restarts(rand=lambda: 0.5)  # jitter centred: exact delays
    p = policy(policy="always", max_restarts=6, window="10m", initial_delay="1s", max_delay="8s")
    delays = [restarts.after_exit(p, False, False, started=t, now=t + 1).delay for t in range(6)]
    assert delays == [1, 2, 4, 8, 8, 8]
    last = restarts.after_exit(p, False, False, started=10, now=11)
    assert last.action == "fail" and last.detail == "restart limit reached: 6 restarts within 600s"


def test_old_restarts_leave_the_window() -> None:
    restarts = Restarts(rand=lambda: 0.5)
    p = policy(policy="always", max_restarts=2, window="60s")
    assert restarts.after_exit(p, False, False, 0, 1).action == "restart"
    assert restarts.after_exit(p, False, False, 2, 3).action == "restart"
    assert restarts.after_exit(p, False, False, 4, 5).action == "fail"
    assert restarts.after_exit(p, False, False, 100, 101).action == "restart"  # the first two aged out


def test_a_stable_incarnation_starts_the_delays_over_and_reset_clears_all() -> None:
    restarts = Restarts(rand=lambda: 0.5)
    p = policy(policy="always", max_restarts=100, window="1h", initial_delay="1s", stable_after="10m")
    for t in range(3):
        restarts.after_exit(p, False, False, t, t + 1)
    assert restarts.after_exit(p, False, False, 10, 11).delay == 8
    assert restarts.after_exit(p, False, False, 20, 20 + 600).delay == 1  # ran 10 minutes: stable
    restarts.reset()
    assert restarts.consecutive == 0 and not restarts.times
