"""The keys a node tells the others after recording usage reports (hived.usage.shared)."""

from __future__ import annotations

from typing import Any

import pytest

from hived.usage.shared import MOST, keys_of


def row(task: str, run: str | None = None, agent: str = "a1", day: str = "2026-12-01") -> dict[str, Any]:
    return {"task_id": task, "run_id": run, "agent_id": agent, "day": day, "cost_micro": 5, "input_tokens": 1}


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], []),
        ([row("t1")], [[{"task_id": "t1", "run_id": None, "agent_id": "a1", "day": "2026-12-01"}]]),
        (  # the same keys twice (two reports of one attempt): once
            [row("t1", "r1"), row("t1", "r1")],
            [[{"task_id": "t1", "run_id": "r1", "agent_id": "a1", "day": "2026-12-01"}]],
        ),
        (  # costs and tokens are not sent: the sums are read from the database
            [row("t2", day="2026-12-02")],
            [[{"task_id": "t2", "run_id": None, "agent_id": "a1", "day": "2026-12-02"}]],
        ),
    ],
)
def test_keys_of_reports(rows: list[dict[str, Any]], expected: list[list[dict[str, Any]]]) -> None:
    assert keys_of(rows) == expected


def test_many_keys_go_in_several_notifications_none_lost() -> None:
    rows = [row(f"t{i:03}") for i in range(MOST * 2 + 1)]
    chunks = keys_of(rows)
    assert [len(c) for c in chunks] == [MOST, MOST, 1]
    assert sorted(k["task_id"] for c in chunks for k in c) == sorted(r["task_id"] for r in rows)
