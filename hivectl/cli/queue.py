"""`hivectl queue [pause|resume]`: hold tasks in the queue (they stay pending) and let them go again.
`hivectl queue` alone shows what holds the queue: its pauses and the cordoned agents."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

import typer

from hivectl.cli.common import OutputOpt, client, usage_error
from hivectl.cli.output import Output, emit
from hivectl.cli.plain import held_rows, key_values
from hivectl.client import Routes

app = typer.Typer(
    help="The queue: pause and resume tasks by type, capability or workflow (alone: what holds it).",
    invoke_without_command=True,
)

TypeOpt = Annotated[str | None, typer.Option(help="tasks of this type")]
RequiresOpt = Annotated[
    list[str] | None, typer.Option(help="tasks requiring this capability; repeatable (all of them)")
]
WorkflowOpt = Annotated[str | None, typer.Option(help="tasks of runs of this workflow")]


def _selector(type: str | None, requires: list[str] | None, workflow: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"requires": requires or []}
    return body | {key: value for key, value in (("type", type), ("workflow", workflow)) if value is not None}


def _show(data: dict[str, Any], output: Output) -> None:
    rows = held_rows(data)
    text = key_values(rows) or "\n".join(f"{key}  {value}" for key, value in rows)
    emit(data, output, lambda: text or "nothing holds the queue")


@app.callback()
def queue(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """What holds the queue: its pauses and the cordoned agents."""
    if ctx.invoked_subcommand is not None:
        return
    status = client(ctx).send(replace(Routes.status(), parse=lambda resp: resp.json()))
    _show({"paused": status.get("paused", []), "cordoned": status.get("cordoned", [])}, output)


@app.command()
def pause(
    ctx: typer.Context,
    type: TypeOpt = None,
    requires: RequiresOpt = None,
    workflow: WorkflowOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Hold the tasks given (none given: every task): they stay pending, queued and new ones alike,
    until resumed. Stored: a restart of hived keeps the pause."""
    state = client(ctx).pause_queue(_selector(type, requires, workflow))
    _show(state.model_dump(mode="json"), output)


@app.command()
def resume(
    ctx: typer.Context,
    type: TypeOpt = None,
    requires: RequiresOpt = None,
    workflow: WorkflowOpt = None,
    all: Annotated[bool, typer.Option("--all", help="lift every pause")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Lift the pause given by the same options (--all: every pause); its tasks go back to the queue."""
    selector = _selector(type, requires, workflow)
    if all and len(selector) > 1 or all and selector["requires"]:
        raise usage_error("--all: not with --type, --requires or --workflow")
    state = client(ctx).resume_queue(selector | ({"all": True} if all else {}))
    _show(state.model_dump(mode="json"), output)

