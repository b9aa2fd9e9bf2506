"""`hivectl schedule list|show|pause|resume|trigger|delete`: schedules (`kind: Schedule`, defined with
`hivectl apply -f`) that start a workflow or a task at the times of a cron expression."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hivectl.cli.common import OutputOpt, client
from hivectl.cli.output import Output, emit

if TYPE_CHECKING:
    from rich.console import RenderableType

    from hived.model.schedules import ScheduleInfo

app = typer.Typer(help="Schedules: workflows and tasks started by cron (kind: Schedule).",
                  no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="the schedule's name", metavar="NAME", show_default=False)]


def _when(value: object) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else "-"


def schedules_table(items: list[ScheduleInfo]) -> RenderableType:
    from hivectl.cli import render

    headers = ["NAME", "CRON", "TIMEZONE", "STARTS", "OVERLAP", "NEXT", "LAST", "RUNNING", "PAUSED"]
    table = render.grid(headers)
    for item in items:
        starts = f"workflow/{item.workflow}" if item.workflow else f"task/{item.task}"
        table.add_row(
            item.name,
            item.cron,
            item.timezone,
            starts,
            item.overlap,
            "-" if item.paused else _when(item.next_run_at),
            _when(item.last_run_at),
            (item.running or "-")[:8],
            "yes" if item.paused else "no",
        )
    return table


@app.command("list")
def list_(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Every schedule: its cron, what it starts, the next and last start, what still runs."""
    items = client(ctx).list_schedules().items
    emit(items, output, lambda: schedules_table(items))


@app.command()
def show(ctx: typer.Context, name: NameArg, output: OutputOpt = Output.table) -> None:
    """One schedule, with its params, queued starts and last error."""
    from hivectl.cli import render

    item = client(ctx).get_schedule(name)
    emit(item, output, lambda: render.details_table(item))


@app.command()
def pause(ctx: typer.Context, name: NameArg, output: OutputOpt = Output.table) -> None:
    """No start until resumed."""
    item = client(ctx).pause_schedule(name, True)
    emit(item, output, lambda: f"schedule/{item.name} paused")


@app.command()
def resume(ctx: typer.Context, name: NameArg, output: OutputOpt = Output.table) -> None:
    """Start again at the cron's next time (times passed while paused are not caught up)."""
    item = client(ctx).pause_schedule(name, False)
    emit(item, output, lambda: f"schedule/{item.name} resumed, next start {_when(item.next_run_at)}")


@app.command()
def trigger(ctx: typer.Context, name: NameArg, output: OutputOpt = Output.table) -> None:
    """Start now, under the overlap policy: prints the run (or task) id; exit 1 if it could not start."""
    fired = client(ctx).trigger_schedule(name)
    if fired.action == "failed":
        from hivectl.cli.common import CliError

        raise CliError(f"schedule/{name}: {fired.error}")
    emit(fired, output, lambda: fired.id if fired.action == "started" else f"schedule/{name} {fired.action}")


@app.command()
def delete(ctx: typer.Context, name: NameArg, output: OutputOpt = Output.table) -> None:
    """Remove a schedule (what it started goes on)."""
    item = client(ctx).delete_schedule(name)
    emit(item, output, lambda: f"schedule/{item.name} deleted")
