"""`hivectl events [-f]`: hived's live events (server-sent events on /events)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from hivectl.cli.common import OutputOpt, client
from hivectl.cli.output import Output


def format_event(event: dict[str, Any]) -> str:
    """One line: time, kind, then the interesting fields."""
    skip = {"id", "kind", "time"}
    rest = " ".join(f"{k}={v}" for k, v in event.items() if k not in skip and v is not None)
    return f"{event.get('time', '')}  {event.get('kind', ''):<16} {rest}"


def events(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new events")] = False,
    since: Annotated[int, typer.Option(help="only events after this id")] = 0,
    output: OutputOpt = Output.table,
) -> None:
    """Recent events (agent status changes, task ends); -f follows them live, across a restart of hived."""
    for event in client(ctx).events(since=since, follow=follow):
        typer.echo(json.dumps(event.data) if output is not Output.table else format_event(event.data))
