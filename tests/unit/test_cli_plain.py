"""`hivectl status` piped prints plain text without rich: the very text rich prints for the table."""

from __future__ import annotations

import io
from typing import Any

import pytest

from hivectl.cli import render
from hivectl.cli.output import Output
from hivectl.cli.plain import key_values, status_rows

STATUS: dict[str, Any] = {
    "version": "0.1.0",
    "database": "sqlite:////var/lib/hive/hive.db",
    "agents": {"active": 3, "busy": 1, "weird": 2},
    "tasks": {},
    "queue_depth": 12,
    "runs": {"running": 1},
    "queue_by_priority": {"5": 12},
    "last_event_id": 7,
}


def rich_piped(status: Any, health: str | None) -> str:
    out = io.StringIO()  # not a terminal: emit prints rich's text with the lines' ends stripped
    render.emit(status, Output.table, lambda: render.status_view(status, health), file=out)
    return out.getvalue()


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"database": "postgresql+asyncpg://hive@db.example:5432/hive"},
        {"agents": {}, "runs": {}, "queue_depth": 0},
        {"version": "x" * 200},
    ],
)
@pytest.mark.parametrize("health", ["ok", "degraded", None])
def test_plain_text_is_what_rich_prints(change: dict[str, Any], health: str | None) -> None:
    status = STATUS | change
    plain = key_values(status_rows(status, health))
    assert plain is not None
    assert plain + "\n" == rich_piped(status, health)


@pytest.mark.parametrize(
    "database", ["sqlite:////home/zoë/hive.db", "two\nlines", "tab\there", "x" * 201, "wide 漢字"]
)
def test_not_simple_is_left_to_rich(database: str) -> None:
    assert key_values(status_rows(STATUS | {"database": database}, "ok")) is None


def test_status_view_takes_the_model_too() -> None:
    from hived.model.schemas import Status

    model = Status.model_validate(STATUS)
    assert rich_piped(model, "ok") == rich_piped(STATUS, "ok")
