"""The pure rules of usage and budgets, by tables: limits and estimates, a result's `usage`, the
`::hive-usage` lines of a streaming stdout, and the agent's book of batches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hivectl.agent.usage import UsageBook, UsageLines, check_usage, parse_line
from hived.model.usage import Budget, Estimate, usage_of_result
from hived.usage.rules import Limit, Spent, misfit, money, next_day, over

OVER = [
    ({"cost_usd": 1}, Spent(1_000_000, 0), None),  # at the budget: not over it
    ({"cost_usd": 1}, Spent(1_000_001, 0), "cost $1.000001 of $1.00"),
    ({"tokens": 100}, Spent(10**9, 100), None),  # no cost limit: any spend
    ({"tokens": 100}, Spent(0, 101), "tokens 101 of 100"),
    ({"cost_usd": 1, "tokens": 100}, Spent(0, 101), "tokens 101 of 100"),
    ({"cost_usd": 0}, Spent(1, 0), "cost $0.000001 of $0.00"),
]


@pytest.mark.parametrize(("budget", "spent", "expected"), OVER)
def test_over(budget: dict[str, Any], spent: Spent, expected: str | None) -> None:
    assert over(Limit.of(budget), spent) == expected


def test_what_a_resume_adds_counts() -> None:
    limit = Limit.of({"cost_usd": 1, "tokens": 10, "on_exceed": "pause"}, 500_000, 5)
    assert (limit.micro, limit.tokens, limit.on_exceed) == (1_500_000, 15, "pause")
    assert over(limit, Spent(1_200_000, 15)) is None


MISFIT = [
    ({"cost_usd": 1}, Spent(800_000, 0), {"cost_usd": 0.2}, None),  # exactly what is left fits
    ({"cost_usd": 1}, Spent(800_000, 0), {"cost_usd": 0.3}, "estimate $0.30, left $0.20"),
    ({"cost_usd": 1}, Spent(1_200_000, 0), {"cost_usd": 0.1}, "estimate $0.10, left $0.00"),
    ({"tokens": 50}, Spent(0, 40), {"tokens": 11}, "estimate 11 tokens, left 10"),
    ({"tokens": 50}, Spent(0, 40), {"cost_usd": 99}, None),  # nothing to compare with
    ({"cost_usd": 1}, Spent(0, 0), None, None),
]


@pytest.mark.parametrize(("budget", "spent", "estimate", "expected"), MISFIT)
def test_misfit(
    budget: dict[str, Any], spent: Spent, estimate: dict[str, Any] | None, expected: str | None
) -> None:
    assert misfit(Limit.of(budget), spent, estimate) == expected


@pytest.mark.parametrize(
    ("micro", "text"), [(1_200_000, "$1.20"), (0, "$0.00"), (150, "$0.00015"), (1_234_567, "$1.234567")]
)
def test_money(micro: int, text: str) -> None:
    assert money(micro) == text


def test_next_day() -> None:
    assert next_day(datetime(2026, 1, 1, 23, 59, 30, tzinfo=UTC)) == 30
    assert next_day(datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)) == 86400


BAD_BUDGETS = [
    ({}, "a budget needs a limit"),
    ({"on_exceed": "pause"}, "a budget needs a limit"),
    ({"cost_usd": 1, "on_exceed": "stop"}, "Input should be 'fail' or 'pause'"),
    ({"cost_usd": -1}, "greater than or equal to 0"),
    ({"cost_usd": "5"}, "valid number"),
    ({"tokens": 1.5}, "valid integer"),
    ({"cost_usd": 1, "max": 2}, "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BUDGETS)
def test_bad_budgets(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Budget.model_validate(body)


def test_an_estimate_needs_a_figure() -> None:
    with pytest.raises(ValueError, match="an estimate needs cost_usd, tokens, or both"):
        Estimate.model_validate({})


RESULTS = [
    ({"x": 1}, False, None),
    ({"usage": {"cost_usd": 0.5, "model": "m"}}, True, None),
    ({"usage": 3}, False, "usage: must be an object"),
    ({"usage": {"cost_usd": -0.5}}, False, "usage.cost_usd: Input should be greater than or equal to 0"),
    ({"usage": {"input_tokens": "9"}}, False, "usage.input_tokens: Input should be a valid integer"),
    ({"usage": {"cost_usd": True}}, False, "usage.cost_usd: Input should be a valid number"),
    ({"usage": {"dollars": 1}}, False, "usage.dollars: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("result", "found", "problem"), RESULTS)
def test_usage_of_result(result: dict[str, Any], found: bool, problem: str | None) -> None:
    usage, why = usage_of_result(result)
    assert (usage is not None) == found
    assert (why or "").startswith(problem or "")
    assert (why is None) == (problem is None)


LINES = [
    ('::hive-usage {"cost_usd": 0.02, "input_tokens": 900}', {"cost_usd": 0.02, "input_tokens": 900}),
    ("::hive-usage {}", {}),
    ('::hive-usage {"cost_usd": 1, "model": "m"}', {"cost_usd": 1.0, "model": "m"}),
    ("::hive-usage", "expected '::hive-usage {...}'"),
    ("::hive-usagex {}", "expected '::hive-usage {...}'"),
    ("::hive-usage [1]", "expected a JSON object"),
    ("::hive-usage {oops", "not JSON"),
    ('::hive-usage {"cost_usd": NaN}', "not JSON"),
    ('::hive-usage {"cost_usd": -0.1}', "cost_usd: must be between 0"),
    ('::hive-usage {"input_tokens": 1.5}', "input_tokens: must be a whole number"),
    ('::hive-usage {"output_tokens": true}', "output_tokens: must be a whole number"),
    ('::hive-usage {"cost": 1}', "cost: unknown field"),
    ('::hive-usage {"model": ""}', "model: must be a name"),
]


@pytest.mark.parametrize(("line", "expected"), LINES)
def test_parse_line(line: str, expected: dict[str, Any] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=expected.replace("[", r"\[").replace("{", r"\{")):
            parse_line(line)
        return
    got = parse_line(line)
    assert {k: v for k, v in got.items() if v not in (0, 0.0, None)} == expected


STREAM = 'start\n::hive-usage {"cost_usd": 0.5}\n{"a": \n:: not usage\n::hive-usage {bad\n::hive-usage {}\n}'


@pytest.mark.parametrize("size", [1, 2, 3, 7, 13, len(STREAM)])
def test_usage_lines_leave_stdout_whatever_the_chunks(size: int) -> None:
    got: list[dict[str, Any]] = []
    warnings: list[str] = []
    lines = UsageLines(got.append, warnings.append)
    kept = "".join(lines.feed(STREAM[i : i + size]) for i in range(0, len(STREAM), size)) + lines.finish()
    assert kept == 'start\n{"a": \n:: not usage\n}'
    assert [g["cost_usd"] for g in got] == [0.5, 0.0]
    assert len(warnings) == 1 and "not JSON" in warnings[0] and lines.ignored == 1


def test_a_last_usage_line_without_newline_counts_and_long_ones_are_malformed() -> None:
    got: list[dict[str, Any]] = []
    warnings: list[str] = []
    lines = UsageLines(got.append, warnings.append)
    assert lines.feed('x\n::hive-usage {"cost_usd": 1}') == "x\n"
    assert lines.finish() == "" and got[0]["cost_usd"] == 1.0
    long = UsageLines(got.append, warnings.append)
    assert long.feed("::hive-usage " + "x" * 10_000 + "\nafter\n") == "after\n"
    assert "longer than 4096 characters" in warnings[0] and len(got) == 1


def test_check_usage_fills_the_fields() -> None:
    assert check_usage({}) == {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "model": None}


def increment(cost: float, model: str | None = None) -> dict[str, Any]:
    return check_usage({"cost_usd": cost, **({"model": model} if model else {})})


def test_usage_book_batches_freeze_once_sent_and_go_again_unchanged() -> None:
    book = UsageBook()
    book.add("t", 7, increment(0.1))
    book.add("t", 7, increment(0.2))  # same attempt and model, not sent yet: merged
    book.add("t", 7, increment(1.0, "big"))
    sent = book.take()
    assert [(b.seq, b.model, round(b.cost_usd, 6)) for b in sent] == [(1, None, 0.3), (2, "big", 1.0)]
    book.add("t", 7, increment(0.4))  # the batch in flight is frozen: a new one
    book.release(sent)  # the request failed
    again = book.take()
    assert [(b.seq, round(b.cost_usd, 6)) for b in again] == [(1, 0.3), (2, 1.0), (3, 0.4)]
    book.settle(again)
    assert book.take() == [] and book.take_attempt(7) == []


def test_an_ended_attempt_takes_all_its_batches() -> None:
    book = UsageBook()
    book.add("t", 1, increment(0.1))
    in_flight = book.take()
    book.add("t", 1, increment(0.2))
    book.add("u", 2, increment(0.5))
    ending = book.take_attempt(1)  # the batch in a heartbeat under way too: hived records it once
    assert [(b.seq, round(b.cost_usd, 6)) for b in ending] == [(1, 0.1), (2, 0.2)]
    book.release(in_flight)
    assert [(b.task_id, b.seq) for b in book.take()] == [("u", 1)]


def test_increments_after_an_attempt_ended_are_dropped() -> None:
    book = UsageBook()
    sink = book.sink("t", 3)
    sink(increment(0.1))
    assert [b.seq for b in book.take_attempt(3)] == [1]
    sink(increment(0.2))  # a python handler's abandoned thread, still reporting
    assert book.take() == []
