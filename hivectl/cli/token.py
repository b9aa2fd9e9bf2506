"""`hivectl token create|list|revoke`: API tokens for the TCP listener (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from hivectl.cli import render
from hivectl.cli.common import OutputOpt, client
from hivectl.cli.render import Output

app = typer.Typer(help="API tokens for hived's TCP listener (hived --listen).", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    scope: Annotated[str, typer.Option(help="admin | operator | read | agent", show_default=False)],
    agent: Annotated[str | None, typer.Option(help="agent tokens: the agent it acts as")] = None,
    name: Annotated[str | None, typer.Option(help="a note: who or what uses the token")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Make a token; it is printed once (hived keeps only its hash). Store it in a file for
    `hivectl --token-file` or `hive-agent --token-file`."""
    made = client(ctx).create_token(scope, agent=agent, name=name)
    render.emit(made, output, lambda: made["token"])


@app.command("list")
def list_(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Tokens (never their secrets): id, scope, agent, name, created, revoked."""
    items = client(ctx).list_tokens()
    table = render.grid(["ID", "SCOPE", "AGENT", "NAME", "CREATED", "REVOKED"])
    for t in items:
        table.add_row(
            t["id"][:8],
            t["scope"],
            t["agent"] or "-",
            t["name"] or "-",
            t["created_at"],
            t["revoked_at"] or "-",
        )
    render.emit(items, output, lambda: table)


@app.command()
def revoke(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(help="token id or unique id prefix", metavar="ID", show_default=False)
    ],
    output: OutputOpt = Output.table,
) -> None:
    """Revoke a token: it is refused from now on."""
    done = client(ctx).revoke_token(ref)
    render.emit(done, output, lambda: f"token/{done['id']} revoked")
