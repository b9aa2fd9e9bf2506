"""The pure rules of flow control, table-tested: the token bucket, round-robin across keys, rates,
Limit documents (errors with FILE:LINE), the `--limit` flag, throttled reports of handlers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hivectl.agent.handlers import Throttled, exception_outcome, exec_outcome, python_outcome
from hivectl.cli.common import CliError
from hivectl.cli.task import parse_limit
from hived.limits.rules import Bucket, RoundRobin, fresh_bucket, has_room, render_key, resize
from hived.model.documents import DocumentError, load_documents
from hived.model.expressions import ExpressionError
from hived.model.limits import LimitSpec, parse_rate, parse_throttle
from hived.model.schemas import TaskSubmit


@pytest.mark.parametrize(
    ("tokens", "at", "now", "units", "has", "wait"),
    [
        (5.0, 0.0, 0.0, 1, True, 0.0),  # full
        (0.0, 0.0, 0.0, 1, False, 0.2),  # empty: 5/s gives one in 0.2 s
        (0.0, 0.0, 0.1, 1, False, 0.1),
        (0.0, 0.0, 0.2, 1, True, 0.0),
        (0.0, 0.0, 100.0, 5, True, 0.0),  # refills up to the size only
        (0.0, 0.0, 100.0, 6, False, float("inf")),  # more than the size: never
        (0.0, 10.0, 5.0, 1, False, 0.2),  # time went back: nothing added
    ],
)
def test_token_bucket(tokens: float, at: float, now: float, units: int, has: bool, wait: float) -> None:
    bucket = Bucket(per_second=5.0, size=5.0, tokens=tokens, at=at)
    assert bucket.has(units, now) is has
    assert bucket.seconds_until(units, now) == pytest.approx(wait)


def test_bucket_take_give_back_and_resize() -> None:
    bucket = fresh_bucket(1.0, 3.0, now=100.0)
    bucket.take(3, 100.0)
    assert bucket.level(100.0) == 0 and bucket.level(101.5) == pytest.approx(1.5)
    bucket.give_back(1, 101.5)
    assert bucket.level(101.5) == pytest.approx(2.5)
    smaller = resize(bucket, 2.0, 2.0, 101.5)
    assert smaller.level(101.5) == 2.0 and smaller.per_second == 2.0


@pytest.mark.parametrize(
    ("held", "units", "concurrency", "room"),
    [(0, 1, 1, True), (1, 1, 1, False), (1, 2, 3, True), (2, 2, 3, False), (99, 1, None, True)],
)
def test_concurrency_room(held: int, units: int, concurrency: int | None, room: bool) -> None:
    assert has_room(held, units, concurrency) is room


def test_round_robin_serves_keys_in_turn_and_priority_within_a_key() -> None:
    lines = RoundRobin()
    for i in range(5):
        lines.push(f"a{i}", "A", 5, i)
    lines.push("b0", "B", 5, 10)
    lines.push("a-urgent", "A", 9, 11)
    served = []
    while len(lines):
        key = lines.keys_in_turn()[0]
        task_id = lines.head(key)
        assert task_id is not None
        served.append(task_id)
        lines.discard(task_id)
        lines.served(key)
    assert served[:3] == ["a-urgent", "b0", "a0"]
    assert lines.keys_in_turn() == []


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [("50/min", (50.0, 60.0)), ("5/s", (5.0, 1.0)), ("0.5 / h", (0.5, 3600.0))],
)
def test_rates(rate: str, parsed: tuple[float, float]) -> None:
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["5/fortnight", "5", "0/s", "-1/s", "five/s", "5/m"])
def test_bad_rates(rate: str) -> None:
    with pytest.raises(ValueError, match="is not a rate"):
        parse_rate(rate)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Limit\nname: api\nrate: 5/fortnight\n", "x.yaml:3: rate: '5/fortnight' is not a rate"),
        ("kind: Limit\nname: api\n", "x.yaml:1: a limit needs a rate, a concurrency, or both"),
        ("kind: Limit\nname: api\nconcurrency: 1\nburst: 3\n", "x.yaml:1: burst: only with a rate"),
        ("kind: Limit\nname: a\nrate: 5/s\nstrategy: cancel_newest\n", "x.yaml:1: strategy: cancel_newest n"),
        ("kind: Limit\nname: a\nconcurrency: 1\nstrategy: newest\n", "x.yaml:4: strategy: Input should be"),
        ("kind: Limit\nname: API\nrate: 5/s\n", "x.yaml:2: name: must be 1-63 lowercase"),
        ("kind: Limit\nname: api\nrate: 5/s\nburts: 3\n", "x.yaml:4: unknown key 'burts'"),
        ("kind: Limit\nname: api\nconcurrency: -1\n", "x.yaml:3: concurrency: Input should be greater than"),
    ],
)
def test_limit_documents_are_refused_with_file_and_line(text: str, message: str) -> None:
    with pytest.raises(DocumentError) as caught:
        load_documents(text, "x.yaml")
    assert str(caught.value).startswith(message)


def test_a_limit_document() -> None:
    (doc,) = load_documents("kind: Limit\nname: anthropic\nrate: 50/min\n", "x.yaml")
    assert isinstance(doc.spec, LimitSpec)
    assert (doc.spec.per_second, doc.spec.bucket_size) == (pytest.approx(50 / 60), 50.0)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ([{"name": "api", "units": -1}], "limits.0.units"),
        ([{"name": "api", "units": 0}], "limits.0.units"),
        ([{"name": "api", "key": "${{ payload. }}"}], "CEL syntax error"),
        ([{"name": "api"}, {"name": "api"}], "limit 'api' is named twice"),
        ([{"name": "Bad Name"}], "limits.0.name"),
    ],
)
def test_bad_limit_references_on_a_task(limits: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskSubmit.model_validate({"type": "job", "limits": limits})
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("template", "payload", "key"),
    [
        ("repo-1", {}, "repo-1"),
        ("${{ payload.repo }}", {"repo": "hive"}, "hive"),
        ("org/${{ payload.repo }}", {"repo": "hive"}, "org/hive"),
    ],
)
def test_keys_render_against_the_payload(template: str, payload: dict[str, Any], key: str) -> None:
    assert render_key(template, payload) == key


@pytest.mark.parametrize(
    ("template", "payload"),
    [("${{ payload.repo }}", {}), ("${{ payload.n }}", {"n": 1}), ("${{ payload.s }}", {"s": ""})],
)
def test_keys_that_fail_or_are_not_strings(template: str, payload: dict[str, Any]) -> None:
    with pytest.raises((ExpressionError, ValueError)):
        render_key(template, payload)


@pytest.mark.parametrize(
    ("flag", "ref"),
    [
        ("anthropic", {"name": "anthropic"}),
        ("anthropic*2", {"name": "anthropic", "units": 2}),
        ("repo:${{ payload.repo }}", {"name": "repo", "key": "${{ payload.repo }}"}),
        ("repo:main*3", {"name": "repo", "key": "main", "units": 3}),
        ("api*-1", {"name": "api", "units": -1}),  # the schema refuses it, naming --limit
    ],
)
def test_the_limit_flag(flag: str, ref: dict[str, Any]) -> None:
    assert parse_limit(flag) == ref


def test_an_empty_limit_flag_is_a_usage_error() -> None:
    with pytest.raises(CliError, match="--limit"):
        parse_limit(":key")


REPORT = {"throttled": {"limit": "anthropic", "retry_after": 30}}


@pytest.mark.parametrize(
    ("returncode", "stdout", "reason"),
    [
        (75, '{"throttled": {"limit": "anthropic", "retry_after": 30}}', "throttled"),
        (75, "rate limited", "error"),  # exit 75 without the report: an ordinary failure
        (0, '{"throttled": {"limit": "anthropic", "retry_after": 30}}', None),  # a result like any
        (1, '{"throttled": {"limit": "anthropic", "retry_after": 30}}', "error"),
    ],
)
def test_exec_throttled_reports(returncode: int, stdout: str, reason: str | None) -> None:
    outcome = exec_outcome(returncode, stdout, "")
    assert outcome.reason == reason
    if reason == "throttled":
        assert outcome.result == REPORT and not outcome.ok


@pytest.mark.parametrize(
    "outcome",
    [
        python_outcome(Throttled("anthropic", 30)),
        python_outcome(REPORT),
        exception_outcome(Throttled("anthropic", 30)),
    ],
)
def test_python_throttled_reports(outcome: Any) -> None:
    assert (outcome.ok, outcome.reason, outcome.result) == (False, "throttled", REPORT)


@pytest.mark.parametrize(
    ("result", "parsed"),
    [
        (REPORT, ("anthropic", 30.0)),
        ({"throttled": {"limit": "a", "retry_after": 10**9}}, ("a", 86400.0)),
        ({"throttled": {"limit": "a"}}, ("a", 0.0)),
        ({"throttled": {"limit": "a", "retry_after": -1}}, None),
        ({"throttled": {"retry_after": 3}}, None),
        ({"throttled": "yes"}, None),
        (None, None),
    ],
)
def test_parse_throttle(result: Any, parsed: tuple[str, float] | None) -> None:
    if parsed is None:
        with pytest.raises(ValueError):
            parse_throttle(result)
    else:
        assert parse_throttle(result) == parsed


def test_an_unknown_import_of_the_agent_package_is_refused() -> None:
    import hivectl.agent

    assert hivectl.agent.Throttled is Throttled
    with pytest.raises(AttributeError):
        hivectl.agent.Nothing  # noqa: B018


def test_a_task_view_shares_its_limits_instead_of_validating_them_again() -> None:
    from hived.model.limits import TakenLimit, taken

    stored = [{"name": "api", "key": None, "units": 1}, {"name": "repo", "key": "r1", "units": 2}]
    first, second = taken(stored), taken([dict(ref) for ref in stored])
    assert [ref.model_dump() for ref in first] == stored
    assert all(a is b for a, b in zip(first, second, strict=True))  # one instance per (name, key, units)
    assert all(isinstance(ref, TakenLimit) for ref in first)
    with pytest.raises(ValueError):  # frozen: a shared instance cannot be changed through one task
        first[1].units = 3
