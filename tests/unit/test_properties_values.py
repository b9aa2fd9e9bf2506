"""Property-based tests (Hypothesis) of what hived stores, over deep and extreme values: every value a
schema accepts can be stored (encoded as strict JSON, UTF-8, no NUL) and read back, and every duration
it accepts can be added to a date. These would have found items 4, 5, 16 and 20 of the hardening issue
(deep nesting, 1e308 backoffs, lone surrogates and NUL, NaN)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hived.model.schemas import RetryPolicy, TaskSubmit
from hived.model.values import MAX_JSON_DEPTH, json_problem

FAST = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

# Any text Python can hold (lone surrogates and NUL included), any float (NaN, inf, 1e308 included).
extreme_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=8),
)
extreme_json = st.recursive(
    extreme_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"n": value}
    return value


@FAST
@given(st.dictionaries(st.text(max_size=4), extreme_json, max_size=4))
def test_an_accepted_payload_can_be_stored_and_read_back(payload: dict[str, Any]) -> None:
    try:
        task = TaskSubmit(type="t", payload=payload)
    except ValidationError:
        return
    text = json.dumps(task.payload, allow_nan=False, ensure_ascii=False)  # strict JSON, or it raises
    assert "\x00" not in text and "\\u0000" not in text
    assert json.loads(text.encode("utf-8")) == task.payload


@FAST
@given(st.integers(0, 3 * MAX_JSON_DEPTH), st.sampled_from([1, "x", None, 1.5, [], {}]))
def test_nesting_is_accepted_exactly_up_to_the_bound(depth: int, leaf: Any) -> None:
    ok = json_problem(nested(depth, leaf)) is None
    assert ok == (depth <= MAX_JSON_DEPTH)


@FAST
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**400), 10**400)))
def test_an_accepted_backoff_can_be_added_to_a_date(seconds: float) -> None:
    try:
        policy = RetryPolicy(initial=seconds, max=seconds)
    except ValidationError:  # (an OverflowError here was a 500: 10**400 seconds)
        return
    assert math.isfinite(policy.initial) and math.isfinite(policy.max)
    datetime.now(UTC) + timedelta(seconds=policy.initial) + timedelta(seconds=policy.max)  # no overflow


@FAST
@given(st.one_of(st.booleans(), st.text(max_size=3), st.floats(), st.integers(-100, 100)))
def test_priority_is_an_integer_from_0_to_9_and_nothing_else(value: Any) -> None:
    try:
        task = TaskSubmit(type="t", priority=value)
    except ValidationError:
        return
    assert type(task.priority) is int and 0 <= task.priority <= 9 and task.priority == value
