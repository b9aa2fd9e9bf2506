"""The JSON hived stores (hived.store.jsontext): orjson's text, read back to the same values as the
standard library's; what orjson refuses falls back to the standard library, never to an error."""

from __future__ import annotations

import json

import pytest

from hived.store import jsontext

VALUES = [
    {"a": 1, "b": [1.5, None, True], "c": {"d": "é ✓ \u2028"}},
    [],
    "text",
    0,
    {"nested": [{"deep": [[[]]]}]},
]


@pytest.mark.parametrize("value", VALUES)
def test_round_trip_same_values_as_json(value: object) -> None:
    text = jsontext.dumps(value)
    assert json.loads(text) == value
    assert jsontext.loads(text) == value
    assert jsontext.loads(json.dumps(value)) == value  # what json wrote before still reads


def test_keys_that_are_not_text_are_written_as_text_as_json_does() -> None:
    assert jsontext.loads(jsontext.dumps({1: "a"})) == json.loads(json.dumps({1: "a"})) == {"1": "a"}


def test_an_integer_beyond_64_bits_falls_back_to_json() -> None:
    big = {"n": 2**70}
    assert jsontext.loads(jsontext.dumps(big)) == big
    assert jsontext.size(big) == len(json.dumps(big, separators=(",", ":")))


def test_nan_written_by_json_long_ago_still_reads() -> None:
    value = jsontext.loads('{"x": NaN}')
    assert value["x"] != value["x"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [({"a": "é"}, len('{"a":"é"}'.encode())), (None, 4), ([1, 2], 5), ({"t": object}, None)],
)
def test_size_counts_compact_utf8(value: object, expected: int | None) -> None:
    compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    assert jsontext.size(value) == (expected if expected is not None else len(compact))
