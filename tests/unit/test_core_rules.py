"""Backoff, durations and redaction."""

from __future__ import annotations

import pytest

from hived.model.backoff import backoff_delay
from hived.model.durations import parse_duration


@pytest.mark.parametrize(
    ("attempt", "expected"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (20, 60.0)]
)
def test_backoff_grows_and_caps(attempt: int, expected: float) -> None:
    assert backoff_delay(attempt, 1.0, 2.0, 60.0) == expected


@pytest.mark.parametrize("rand", [0.0, 0.5, 1.0])
def test_backoff_jitter_stays_in_band(rand: float) -> None:
    delay = backoff_delay(3, 1.0, 2.0, 60.0, jitter=0.1, rand=lambda: rand)
    assert 3.6 <= delay <= 4.4


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2s", 2.0), ("500ms", 0.5), ("5m", 300.0), ("1h", 3600.0), (3, 3.0), ("1.5", 1.5), (0.25, 0.25)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "", "5 weeks", True, None, -1, "-2s"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_redaction_of_secrets_in_log_records_and_values() -> None:
    import logging

    from hived import redact

    redact.remember("s3cr3t-value", "ab")  # too short to mask: it would hide ordinary words
    record = logging.LogRecord(
        "hived", logging.INFO, __file__, 1, "token %s and %s", ("s3cr3t-value", "ab"), None
    )
    assert redact.RedactFilter().filter(record)
    assert record.getMessage() == "token *** and ab"
    assert redact.scrub({"a": ["x s3cr3t-value y"], "n": 3}) == {"a": ["x *** y"], "n": 3}
    assert redact.masked_env({"K": "v", "S": "s3cr3t-value"}, ["S"]) == {"K": "v", "S": "***"}
