"""The pure rules of schedules, as tables: cron times in a time zone, catch-up after a restart, the
overlap policies; and `kind: Schedule` documents checked with FILE:LINE errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hived.model.documents import load_documents
from hived.model.schedules import MAX_QUEUED
from hived.schedules.rules import last_fire, next_fire, on_overlap, on_start
from tests.unit.test_wait_rules import assert_refused


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "timezone", "after", "expected"),
    [
        ("*/1 * * * *", "UTC", "2026-01-01T00:00:00", "2026-01-01T00:01:00"),
        ("*/1 * * * *", "UTC", "2026-01-01T00:00:30", "2026-01-01T00:01:00"),
        ("0 9 * * *", "Europe/Paris", "2026-01-01T00:00:00", "2026-01-01T08:00:00"),  # winter: UTC+1
        ("0 9 * * *", "Europe/Paris", "2026-07-01T00:00:00", "2026-07-01T07:00:00"),  # summer: UTC+2
        ("30 2 * * 1", "UTC", "2026-01-01T00:00:00", "2026-01-05T02:30:00"),  # the first Monday
    ],
)
def test_next_fire(cron: str, timezone: str, after: str, expected: str) -> None:
    assert next_fire(cron, timezone, at(after)) == at(expected)


def test_last_fire_counts_the_moment_itself() -> None:
    assert last_fire("0 * * * *", "UTC", at("2026-01-01T02:00:00")) == at("2026-01-01T02:00:00")
    assert last_fire("0 * * * *", "UTC", at("2026-01-01T02:59:59")) == at("2026-01-01T02:00:00")


@pytest.mark.parametrize(
    ("stored", "now", "catchup", "fire", "following"),
    [
        (None, "2026-01-01T00:10:00", 3600, False, "2026-01-01T01:00:00"),  # never stored
        ("2026-01-01T01:00:00", "2026-01-01T00:30:00", 3600, False, "2026-01-01T01:00:00"),  # not yet
        ("2026-01-01T01:00:00", "2026-01-01T01:30:00", 3600, True, "2026-01-01T02:00:00"),
        ("2026-01-01T01:00:00", "2026-01-01T03:30:00", 3600, True, "2026-01-01T04:00:00"),  # 3 missed: 1 run
        ("2026-01-01T01:00:00", "2026-01-01T01:30:00", 600, False, "2026-01-01T02:00:00"),  # too old
        ("2026-01-01T01:00:00", "2026-01-01T01:30:00", 0, False, "2026-01-01T02:00:00"),  # no catchup
    ],
)
def test_on_start(stored: str | None, now: str, catchup: float, fire: bool, following: str) -> None:
    due = at(stored) if stored else None
    assert on_start("0 * * * *", "UTC", due, at(now), catchup) == (fire, at(following))


@pytest.mark.parametrize(
    ("policy", "running", "queued", "action"),
    [
        ("skip", False, 0, "start"),
        ("queue", False, 3, "start"),
        ("skip", True, 0, "skip"),
        ("queue", True, 0, "queue"),
        ("queue", True, MAX_QUEUED, "skip"),
        ("cancel_previous", True, 0, "cancel_previous"),
    ],
)
def test_on_overlap(policy: str, running: bool, queued: int, action: str) -> None:
    assert on_overlap(policy, running, queued) == action


HEAD = "kind: Schedule\nname: nightly\nworkflow: ship\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEAD + "cron: '61 * * * *'\n", "s.yaml:4: cron: '61 * * * *' is not a valid cron expression"),
        (HEAD + "cron: '* * * *'\n", "s.yaml:4: cron: '* * * *': expected 5 fields"),
        (HEAD + "cron: '* * * * * *'\n", "s.yaml:4: cron: '* * * * * *': expected 5 fields"),
        (HEAD + "cron: '0 0 * * *'\ntimezone: Mars/Base\n", "s.yaml:5: timezone: unknown time zone"),
        (HEAD + "cron: '0 0 * * *'\noverlap: wait\n", "s.yaml:5: overlap: Input should be 'skip'"),
        (HEAD + "cron: '0 0 * * *'\ncatchup: soon\n", "s.yaml:5: catchup: 'soon' is not a duration"),
        (HEAD + "cron: '0 0 * * *'\ncolour: red\n", "s.yaml:5: unknown key 'colour'"),
        ("kind: Schedule\nname: n\ncron: '0 0 * * *'\n", "s.yaml:1: give exactly one of workflow or task"),
        (HEAD + "cron: '0 0 * * *'\ntask: {type: t}\n", "s.yaml:1: give exactly one of workflow or task"),
        (
            "kind: Schedule\nname: n\ncron: '0 0 * * *'\ntask: {type: t}\nparams: {a: 1}\n",
            "s.yaml:1: params are a workflow's",
        ),
        (HEAD.replace("nightly", "Bad Name") + "cron: '0 0 * * *'\n", "s.yaml:2: name: must be 1-63"),
    ],
)
def test_bad_schedule_documents_name_the_line(text: str, message: str) -> None:
    assert_refused(text, "s.yaml", message)


def test_a_good_schedule_document() -> None:
    (doc,) = load_documents(
        HEAD + "cron: '*/5  * * * *'\ntimezone: Europe/Paris\noverlap: queue\ncatchup: 1h\nparams: {a: 1}\n",
        "s.yaml",
    )
    assert doc.kind == "Schedule" and doc.names == ["nightly"]
    assert doc.spec.model_dump(include={"cron", "catchup", "overlap"}) == {  # type: ignore[union-attr]
        "cron": "*/5 * * * *",
        "catchup": 3600.0,
        "overlap": "queue",
    }
