"""`hivectl limit list|show|delete`: flow-control limits (`kind: Limit`, defined with `hivectl apply -f`)
with their live state: tokens left, units held, tasks waiting, closed-until."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hivectl.cli.common import OutputOpt, client
from hivectl.cli.output import Output, emit

if TYPE_CHECKING:
    from rich.console import RenderableType

    from hived.model.limits import LimitInfo

app = typer.Typer(help="Limits: rates and concurrency that tasks take (kind: Limit).", no_args_is_help=True)


def _dash(value: object) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def limits_table(limits: list[LimitInfo]) -> RenderableType:
    from hivectl.cli import render

    headers = ["NAME", "RATE", "BURST", "TOKENS", "CONCURRENCY", "HOLDERS", "WAITING", "CLOSED UNTIL"]
    table = render.grid(headers)
    for lim in limits:
        closed = lim.closed_until.isoformat(timespec="seconds") if lim.closed_until else "-"
        concurrency = f"{lim.concurrency} ({lim.strategy})" if lim.concurrency else "-"
        table.add_row(
            lim.name,
            _dash(lim.rate),
            _dash(lim.burst),
            _dash(lim.tokens),
            concurrency,
            str(lim.holders),
            str(lim.waiting),
            closed,
        )
    return table


def limit_view(lim: LimitInfo) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    from hivectl.cli import render

    parts: list[RenderableType] = [render.details_table(lim, skip=("keys",))]
    if lim.keys:
        keys = render.grid(["KEY", "HOLDERS", "WAITING"])
        for key in lim.keys:
            keys.add_row(Text(_dash(key.key)), str(key.holders), str(key.waiting))
        parts += [Text(""), keys]
    return Group(*parts)


NameArg = Annotated[str, typer.Argument(help="the limit's name", metavar="NAME", show_default=False)]


@app.command("list")
def list_(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Every limit: rate, tokens left, concurrency, units held, tasks waiting, closed-until."""
    items = client(ctx).list_limits().items
    emit(items, output, lambda: limits_table(items))


@app.command()
def show(
    ctx: typer.Context,
    name: NameArg,
    output: OutputOpt = Output.table,
) -> None:
    """One limit, with its keys (units held and tasks waiting per key)."""
    lim = client(ctx).get_limit(name)
    emit(lim, output, lambda: limit_view(lim))


@app.command()
def delete(
    ctx: typer.Context,
    name: NameArg,
    output: OutputOpt = Output.table,
) -> None:
    """Remove a limit (refused while tasks hold it or wait for it; -o json: the limit as it was)."""
    lim = client(ctx).delete_limit(name)
    emit(lim, output, lambda: f"limit/{lim.name} deleted")
