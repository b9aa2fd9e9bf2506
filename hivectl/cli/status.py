"""`hivectl status`: hived's health and counts. The answers are read as JSON objects, not as the
schemas' models: this command, the one run most often, imports none of hived's schemas; and piped, it
prints its table as plain text (the same text as rich's) without importing rich."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import typer

from hivectl.cli.common import OutputOpt, client
from hivectl.cli.output import Output, emit
from hivectl.cli.plain import key_values, status_rows
from hivectl.client import Routes

if TYPE_CHECKING:
    from rich.table import Table

    from hivectl.client.answers import Answer


def _json(resp: Answer) -> Any:
    return resp.json()


def _view(data: dict[str, Any], health: str) -> Table | str:
    if not sys.stdout.isatty() and (text := key_values(status_rows(data, health))) is not None:
        return text
    from hivectl.cli import render  # rich: for a terminal (bold, colours)

    return render.status_view(data, health)


def status(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Health, agents by status, tasks by status, queue depth."""
    cli = client(ctx)
    health = cli.send(replace(Routes.health(), parse=_json))
    data = cli.send(replace(Routes.status(), parse=_json))
    emit(data, output, lambda: _view(data, health["status"]))
