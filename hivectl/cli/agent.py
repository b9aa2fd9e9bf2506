"""`hivectl agent ...`: spawn, list, show, restart, remove, logs."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from pydantic import ValidationError

from hivectl.cli import render
from hivectl.cli.apply import agent_body, read_documents
from hivectl.cli.common import OutputOpt, client, fail
from hivectl.cli.render import Output
from hived.api.schemas import AgentSpec

app = typer.Typer(help="Agents: supervised workers.", no_args_is_help=True)


@app.command()
def spawn(
    ctx: typer.Context,
    file: Annotated[str | None, typer.Option("--file", "-f", help="an Agent document")] = None,
    name: Annotated[str | None, typer.Option(help="unique name")] = None,
    type: Annotated[str | None, typer.Option(help="agent type (default: the name)")] = None,
    cap: Annotated[list[str] | None, typer.Option(help="a capability (repeatable)")] = None,
    max_concurrency: Annotated[int, typer.Option(help="tasks at once")] = 1,
    workdir: Annotated[str | None, typer.Option(help="working directory of its handlers")] = None,
    env: Annotated[list[str] | None, typer.Option(help="KEY=VALUE (repeatable)")] = None,
    python: Annotated[str | None, typer.Option(help="handler: package.module:function")] = None,
    exec_: Annotated[
        list[str] | None,
        typer.Option(
            "--exec", help="handler: a program and its arguments (repeat --exec per argument, or quote)"
        ),
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Spawn an agent from -f FILE or from flags (--name, --cap, --exec/--python)."""
    cli = client(ctx)
    if file:
        bodies = [agent_body(s, base) for base, doc in read_documents([file]) for s in [doc.spec]]
    else:
        if not name:
            raise fail("give --name (or -f FILE)", 2)
        argv = [part for item in exec_ or [] for part in item.split()] if exec_ and len(exec_) == 1 else exec_
        handler = {"exec": argv} if argv else {"python": python} if python else None
        if handler is None:
            raise fail("give a handler: --exec CMD or --python MOD:FN", 2)
        pairs = dict(item.split("=", 1) for item in env or [] if "=" in item)
        if env and len(pairs) != len(env):
            raise fail("--env: use KEY=VALUE", 2)
        try:
            spec = AgentSpec(
                name=name,
                type=type,
                capabilities=cap or [],
                max_concurrency=max_concurrency,
                workdir=workdir,
                env=pairs,
                handler=handler,
            )  # type: ignore[arg-type]
        except ValidationError as exc:
            err = exc.errors()[0]
            raise fail(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        bodies = [agent_body(spec, None)]
    agents = [cli.spawn(body) for body in bodies]
    if output is Output.table:
        for agent in agents:
            typer.echo(f"agent/{agent['name']} spawned ({agent['id']})")
    else:
        render.dump(agents if len(agents) > 1 else agents[0], output)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    type: Annotated[str | None, typer.Option(help="only this type")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """List agents."""
    render.agents(client(ctx).agents(status=status, type=type), output)


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name or id (prefix)")],
    output: OutputOpt = Output.table,
) -> None:
    """An agent with its incarnations."""
    render.agent_detail(client(ctx).agent(ref), output)


@app.command()
def restart(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name or id (prefix)")],
    output: OutputOpt = Output.table,
) -> None:
    """Drain and restart an agent (also clears `failed`)."""
    agent = client(ctx).restart_agent(ref)
    if output is Output.table:
        typer.echo(f"agent/{agent['name']} restarted (pid {agent['pid']})")
    else:
        render.dump(agent, output)


@app.command("rm")
def remove(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name or id (prefix)")],
    drain: Annotated[bool, typer.Option(help="let running tasks finish first")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the drain")] = 60.0,
    output: OutputOpt = Output.table,
) -> None:
    """Stop an agent (after draining it with --drain) and remove it."""
    agent = client(ctx).delete_agent(ref, drain, timeout)
    if output is Output.table:
        typer.echo(f"agent/{agent['name']} removed")
    else:
        render.dump(agent, output)


@app.command()
def logs(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name or id (prefix)")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines")] = False,
    incarnation: Annotated[int | None, typer.Option(help="an earlier incarnation's log")] = None,
) -> None:
    """The agent's log (its stdout and stderr)."""
    cli = client(ctx)
    text, offset = cli.agent_logs(ref, -16384, incarnation)
    typer.echo(text, nl=False)
    while follow:
        time.sleep(0.5)
        text, offset = cli.agent_logs(ref, offset, incarnation)
        typer.echo(text, nl=False)
