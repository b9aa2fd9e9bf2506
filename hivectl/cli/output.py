"""Writing hivectl's output: JSON and YAML (the API objects) for scripts, and `emit`, which prints a
command's table for people. Light on purpose: a command that prints JSON or a plain line imports
neither rich (render.py builds the tables) nor YAML nor pydantic."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from hivectl.client import LogChunk


class Output(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def _is_model(obj: Any) -> bool:
    """A pydantic model? (One can exist only once pydantic has been imported, so never import it here.)"""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(obj, pydantic.BaseModel)


def to_data(obj: Any) -> Any:
    """The JSON-able shape of what the API returned: models as the API sends them, lists as arrays."""
    if _is_model(obj):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_data(item) for item in obj]
    if isinstance(obj, dict):
        return {key: to_data(value) for key, value in obj.items()}
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def serialize(obj: Any, output: Output) -> str:
    data = to_data(obj)
    if output is Output.json:
        return json.dumps(data, indent=2)
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True).rstrip()


def console(file: Any = None) -> Console:
    """stdout for people; when piped, wide enough that tables are never cut."""
    from rich.console import Console

    out = file or sys.stdout
    width = None if out.isatty() else 1000
    return Console(file=out, width=width, highlight=False, soft_wrap=False)


def emit(obj: Any, output: Output, table: Callable[[], RenderableType | str], file: Any = None) -> None:
    """`table()` for people, else `obj` as JSON or YAML."""
    out = file or sys.stdout
    if output is Output.table:
        view = table()
        if isinstance(view, str):
            print(view, file=out, flush=True)
        elif out.isatty():
            console(out).print(view)
        else:  # piped: plain text without the padding that ends a table's lines
            con = console(out)
            with con.capture() as captured:
                con.print(view)
            out.write("\n".join(line.rstrip() for line in captured.get().splitlines()) + "\n")
            out.flush()
    else:
        print(serialize(obj, output), file=out, flush=True)


def log_chunk(chunk: LogChunk, output: Output, file: Any = None) -> None:
    """Log text as is; with -o json one JSON line per chunk (`text`, `offset`), with yaml a document."""
    out = file or sys.stdout
    if output is Output.table:
        out.write(chunk.text)
    elif output is Output.json:
        out.write(json.dumps({"text": chunk.text, "offset": chunk.offset}) + "\n")
    else:
        out.write("---\n" + serialize(chunk, output) + "\n")
    out.flush()
