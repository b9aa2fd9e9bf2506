"""What every hivectl command shares: the client from the global options, and the -o option."""

from __future__ import annotations

from typing import Annotated

import typer

from hivectl.cli.render import Output
from hivectl.client import Client
from hivectl.endpoint import Endpoint

OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table, json or yaml")]


def client(ctx: typer.Context) -> Client:
    obj = ctx.find_root().obj or {}
    return Client(Endpoint.from_env(socket=obj.get("socket"), url=obj.get("url"), token=obj.get("token")))


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)
