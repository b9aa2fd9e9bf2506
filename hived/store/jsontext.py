"""How hived writes, reads and measures the JSON it stores (payloads, options, results, labels):
orjson, a fraction of the standard library's time for the small values of every task (the engines'
serializer for every JSON column); the standard library for what orjson refuses (an integer beyond
64 bits), so that nothing hived stored before is refused now. The text differs from json.dumps's
(compact, UTF-8 rather than ASCII escapes), its values do not: hived reads JSON by value only."""

from __future__ import annotations

import json
from typing import Any

import orjson

OPTIONS = orjson.OPT_NON_STR_KEYS  # (keys that are not text are written as text, as json does)


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a type it does not know
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # what json reads and orjson does not (NaN written long ago)
        return json.loads(text)


def size(value: Any) -> int:
    """Bytes of the value as compact UTF-8 JSON (what a bound on a payload or a result counts);
    a value that is not JSON counts as its text."""
    try:
        return len(orjson.dumps(value, default=str, option=OPTIONS))
    except TypeError:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())
