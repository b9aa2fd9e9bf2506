"""The queue controls' pure rules: which pause holds a task and how its waiting reason reads, labels,
and which statuses a bulk action takes."""

from __future__ import annotations

import pytest

from hived.model.fields import parse_label
from hived.model.queue import check_bulk_status
from hived.tasks.holds import Pause, waiting_reason

F = frozenset


@pytest.mark.parametrize(
    ("pause", "task", "held"),
    [
        (Pause(), ("build", F(), None), True),  # no selector: every task
        (Pause(type="build"), ("build", F(), None), True),
        (Pause(type="build"), ("test", F(), None), False),
        (Pause(requires=F({"gpu"})), ("x", F({"gpu", "python"}), None), True),
        (Pause(requires=F({"gpu"})), ("x", F({"python"}), None), False),
        (Pause(requires=F({"gpu", "python"})), ("x", F({"gpu"}), None), False),  # needs every one
        (Pause(workflow="ship"), ("x", F(), "ship"), True),
        (Pause(workflow="ship"), ("x", F(), None), False),  # not a run's task
        (Pause(type="build", workflow="ship"), ("build", F(), "other"), False),  # all must hold
        (Pause(type="build", workflow="ship"), ("build", F(), "ship"), True),
    ],
)
def test_which_pause_holds_a_task(
    pause: Pause, task: tuple[str, frozenset[str], str | None], held: bool
) -> None:
    assert pause.matches(*task) is held


@pytest.mark.parametrize(
    ("pauses", "reason"),
    [
        ([], None),
        ([Pause(type="test")], None),
        ([Pause(type="build")], "paused (type build)"),
        ([Pause()], "paused (all tasks)"),
        ([Pause(type="build"), Pause(requires=F({"gpu"}))], "paused (type build; requires gpu)"),
        (
            [Pause(type="build", requires=F({"gpu"}), workflow="w")],
            "paused (type build, requires gpu, workflow w)",
        ),
    ],
)
def test_waiting_reason_names_each_pause_holding_the_task(pauses: list[Pause], reason: str | None) -> None:
    assert waiting_reason(pauses, "build", F({"gpu"}), "w") == reason


def test_a_pause_key_is_its_selector() -> None:
    assert Pause(requires=F({"b", "a"})).key == Pause(requires=F({"a", "b"})).key
    assert len({Pause().key, Pause(type="a").key, Pause(workflow="a").key, Pause(requires=F("a")).key}) == 4


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("team=infra", ("team", "infra")),
        ("k=", ("k", "")),
        ("url=a=b", ("url", "a=b")),
        ("app.kubernetes.io/name=x", ("app.kubernetes.io/name", "x")),
    ],
)
def test_labels_parse(text: str, parsed: tuple[str, str]) -> None:
    assert parse_label(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("team", "'team' is not KEY=VALUE"),
        ("=x", "a label key is 1-63"),
        ("-a=x", "a label key is 1-63"),
        ("a b=x", "a label key is 1-63"),
        ("k=" + "x" * 256, "at most 255 characters"),
        ("k=a\nb", "no control characters"),
    ],
)
def test_bad_labels_are_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_label(text)


@pytest.mark.parametrize(
    ("action", "status", "ok"),
    [
        ("cancel", "pending", True),
        ("cancel", "scheduled", True),
        ("cancel", "running", True),
        ("cancel", "failed", False),
        ("retry", "failed", True),
        ("retry", "cancelled", True),
        ("retry", "completed", False),
        ("retry", "pending", False),
    ],
)
def test_bulk_statuses(action: str, status: str, ok: bool) -> None:
    problem = check_bulk_status(action, status)
    assert (problem is None) is ok
    if problem:
        assert problem.startswith("status: ")
