"""The one formatter of validation errors, for every place that shows them: hived's 422 answers,
hivectl (a 422 from hived, or a value checked before it is sent), hive-agent's flags, and YAML
documents. One line: `field.sub: message; ...`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# The part of FastAPI's `loc` that says where in the request a field was; not part of its name.
REQUEST_PARTS = ("body", "query", "path", "header")


def clean_message(msg: object) -> str:
    """pydantic's message without its `Value error, ` / `Assertion failed, ` prefix."""
    return str(msg).removeprefix("Value error, ").removeprefix("Assertion failed, ")


def format_errors(errors: Sequence[Any], names: Mapping[str, str] | None = None, unnamed: str = "") -> str:
    """Validation errors (pydantic's `errors()`, or the list in a FastAPI 422 answer) on one line.
    `names` renames a top-level field (to the flag a user typed); an error of the whole object is
    named `unnamed`, if given."""
    parts = []
    for err in errors:
        if not isinstance(err, Mapping):
            parts.append(str(err))
            continue
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] in REQUEST_PARTS:
            loc = loc[1:]
        if loc and names:
            loc[0] = names.get(loc[0], loc[0])
        loc = loc or ([unnamed] if unnamed else [])
        msg = clean_message(err.get("msg", "invalid"))
        parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return "; ".join(parts)
