"""`hivectl node list|show|drain|uncordon`: the hived of a cluster on one PostgreSQL (on SQLite, the
one hived), their heartbeats and the agents placed on each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hivectl.cli.common import OutputOpt, client
from hivectl.cli.output import Output, emit

if TYPE_CHECKING:
    from rich.console import RenderableType

    from hived.model.nodes import Node

app = typer.Typer(help="Nodes: the hived of a cluster on one PostgreSQL.", no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="the node's name", metavar="NAME", show_default=False)]


def _when(value: object) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"  # type: ignore[attr-defined]


def nodes_table(nodes: list[Node]) -> RenderableType:
    from hivectl.cli import render

    table = render.grid(["NAME", "STATUS", "HOST", "PID", "AGENTS", "HEARTBEAT", ""])
    for node in nodes:
        agents = ",".join(node.agents) if len(node.agents) <= 3 else f"{len(node.agents)} agents"
        here = "(this node)" if node.this else ""
        row = [node.name, node.status, node.host or "-", str(node.pid or "-"), agents or "-"]
        table.add_row(*row, _when(node.heartbeat_at), here)
    return table


@app.command("list")
def list_(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Every node: status (active, draining, lost, stopped), host, agents, last heartbeat."""
    items = client(ctx).list_nodes().items
    emit(items, output, lambda: nodes_table(items))


@app.command()
def show(ctx: typer.Context, name: NameArg, output: OutputOpt = Output.table) -> None:
    """One node, with the agents placed on it."""
    from hivectl.cli import render

    node = client(ctx).get_node(name)
    emit(node, output, lambda: render.details_table(node))


@app.command()
def drain(ctx: typer.Context, name: NameArg, output: OutputOpt = Output.table) -> None:
    """Its agents take no new work (what they run finishes); its queued work goes to other nodes."""
    node = client(ctx).node_verb(name, "drain")
    emit(node, output, lambda: f"node/{node.name} {node.status}")


@app.command()
def uncordon(ctx: typer.Context, name: NameArg, output: OutputOpt = Output.table) -> None:
    """A drained node takes work again."""
    node = client(ctx).node_verb(name, "uncordon")
    emit(node, output, lambda: f"node/{node.name} {node.status}")
