"""`hivectl task ...`: submit, list, show, cancel, retry, logs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from hivectl.cli import render
from hivectl.cli.common import OutputOpt, client, fail
from hivectl.cli.render import Output

app = typer.Typer(help="Tasks: units of work routed to agents.", no_args_is_help=True)
FINAL = ("completed", "failed", "cancelled")


def parse_payload(raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    text = raw
    if raw.startswith("@"):
        try:
            text = Path(raw[1:]).read_text()
        except OSError as exc:
            raise fail(f"--payload: {raw[1:]}: {exc.strerror}", 2) from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise fail(f"--payload: not JSON ({exc})", 2) from None
    if not isinstance(value, dict):
        raise fail('--payload: must be a JSON object, like \'{"key": "value"}\'', 2)
    return value


@app.command()
def submit(
    ctx: typer.Context,
    type: Annotated[str, typer.Argument(help="task type")],
    payload: Annotated[str | None, typer.Option(help="JSON object, or @file")] = None,
    priority: Annotated[int, typer.Option(help="0-9, higher runs first")] = 5,
    requires: Annotated[list[str] | None, typer.Option(help="a needed capability (repeatable)")] = None,
    max_attempts: Annotated[int, typer.Option(help="attempts before the task fails")] = 3,
    timeout: Annotated[str | None, typer.Option(help="per attempt, e.g. 30s or 5m")] = None,
    stall_timeout: Annotated[str | None, typer.Option(help="kill an attempt silent this long")] = None,
    success_when: Annotated[
        str | None, typer.Option(help="CEL over result, e.g. 'result.ok == true'")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="a second submit returns the first task")
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="follow the task to its end; exit 0 only if it completed")
    ] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Submit a task; prints its id (or the task with -o json)."""
    body: dict[str, Any] = {
        "type": type,
        "payload": parse_payload(payload),
        "priority": priority,
        "requires": requires or [],
        "max_attempts": max_attempts,
    }
    for key, value in (
        ("timeout", timeout),
        ("stall_timeout", stall_timeout),
        ("success_when", success_when),
        ("idempotency_key", idempotency_key),
    ):
        if value is not None:
            body[key] = value
    cli = client(ctx)
    task = cli.submit(body)
    if not wait:
        typer.echo(task["id"]) if output is Output.table else render.dump(task, output)
        return
    while task["status"] not in FINAL:
        time.sleep(0.2)
        task = cli.task(task["id"])
    render.task_detail(task, output)
    if task["status"] != "completed":
        raise typer.Exit(1)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="only this status (failed: the dead letters)")] = None,
    type: Annotated[str | None, typer.Option(help="only this type")] = None,
    agent: Annotated[str | None, typer.Option(help="only this agent (name or id)")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 100,
    output: OutputOpt = Output.table,
) -> None:
    """List tasks, newest first."""
    cli = client(ctx)
    items = cli.tasks(status=status, type=type, agent=agent, limit=limit)
    names = {a["id"]: a["name"] for a in cli.agents()} if output is Output.table else {}
    render.tasks(items, output, names)


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="task id (prefix)")],
    output: OutputOpt = Output.table,
) -> None:
    """A task with its attempts."""
    render.task_detail(client(ctx).task(ref), output)


@app.command()
def cancel(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="task id (prefix)")],
    output: OutputOpt = Output.table,
) -> None:
    """Cancel a queued or running task."""
    task = client(ctx).cancel_task(ref)
    typer.echo(f"task/{task['id']} {task['status']}") if output is Output.table else render.dump(task, output)


@app.command()
def retry(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="task id (prefix)")],
    output: OutputOpt = Output.table,
) -> None:
    """Resubmit a failed or cancelled task."""
    task = client(ctx).retry_task(ref)
    typer.echo(f"task/{task['id']} {task['status']}") if output is Output.table else render.dump(task, output)


@app.command()
def logs(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="task id (prefix)")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="until the task ends")] = False,
) -> None:
    """Captured output of the task's attempts."""
    cli = client(ctx)
    task_id = cli.task(ref)["id"]
    text, offset = cli.task_logs(task_id, 0)
    typer.echo(text, nl=False)
    while follow and cli.task(task_id)["status"] not in FINAL:
        time.sleep(0.5)
        text, offset = cli.task_logs(task_id, offset)
        typer.echo(text, nl=False)
    if follow:
        typer.echo(cli.task_logs(task_id, offset)[0], nl=False)
