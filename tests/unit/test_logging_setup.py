"""hived's log handler: the journald prefix under systemd, access-log fields in JSON, and tokens
masked by their shape."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hived import logging_setup, redact


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def record(level: int, msg: str, args: tuple[object, ...] = (), name: str = "hived") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_journal_lines_carry_the_priority() -> None:
    formatter = logging_setup.JournalFormatter()
    assert formatter.format(record(logging.WARNING, "disk %s", ("full",))) == "<4>hived: disk full"
    assert formatter.format(record(logging.ERROR, "a\nb")) == "<3>hived: a\n<3>b"


def test_journald_is_recognised_by_the_stream_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open(tmp_path / "err", "w") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert isinstance(logging_setup.text_formatter(stream), logging_setup.JournalFormatter)
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")  # stderr redirected elsewhere
        assert not isinstance(logging_setup.text_formatter(stream), logging_setup.JournalFormatter)


def test_json_access_log_has_fields() -> None:
    rec = record(
        logging.INFO, '%s - "%s %s HTTP/%s" %d', ("", "GET", "/status", "1.1", 200), "uvicorn.access"
    )
    entry = json.loads(logging_setup.JsonFormatter().format(rec))
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/status", 200)


def test_tokens_are_masked_by_shape(tmp_path: Path, restore_root: None) -> None:
    with open(tmp_path / "log", "w") as stream:
        logging_setup.configure("info", "text", stream=stream)
        log = logging.getLogger("hived.test")
        log.info("headers %s", {"Authorization": "Bearer tok-unseen-123"})
        log.info("Authorization: Basic dXNlcjpwdw==")
        log.info("sent bearer abc.def-ghi to the upstream")
    text = (tmp_path / "log").read_text()
    for secret in ("tok-unseen-123", "dXNlcjpwdw==", "abc.def-ghi"):
        assert secret not in text
    assert text.count(redact.MASK) == 3 and "to the upstream" in text
