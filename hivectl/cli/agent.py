"""`hivectl agent spawn|list|show|restart|rm|logs`."""

from __future__ import annotations

import shlex
import time
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from hivectl.cli import render
from hivectl.cli.common import CliError, OutputOpt, client, flag_error, usage_error
from hivectl.cli.documents import agent_specs, load_files
from hivectl.cli.render import Output
from hivectl.client import Client
from hived.model.schemas import AgentSpec

app = typer.Typer(help="Agents: supervised, long-lived workers.", no_args_is_help=True)

REF_HELP = "agent name, id or unique id prefix"
RefArg = Annotated[str, typer.Argument(help=REF_HELP, metavar="REF", show_default=False)]
FOLLOW_INTERVAL = 0.5
SPEC_FLAGS = {
    "name": "--name",
    "type": "--type",
    "capabilities": "--cap",
    "max_concurrency": "--max-concurrency",
    "workdir": "--workdir",
    "env": "--env",
    "handler": "--exec/--python",
}


def spec_from_flags(
    name: str | None,
    type: str | None,
    caps: list[str],
    max_concurrency: int | None,
    workdir: str | None,
    env: list[str],
    exec_: list[str],
    python: str | None,
) -> AgentSpec:
    """An AgentSpec from command-line flags; bad values are usage errors naming the flag."""
    if not name:
        raise usage_error("give --name (or -f FILE)")
    if bool(exec_) == bool(python):
        raise usage_error("give a handler: --exec CMD or --python MODULE:FUNCTION (one of them)")
    try:
        # One --exec is a command line ("python3 worker.py --fast"); several are the argv items.
        argv = shlex.split(exec_[0]) if len(exec_) == 1 else exec_
    except ValueError as exc:
        raise usage_error(f"--exec: {exc}") from None
    pairs = [item.partition("=") for item in env]
    if bad := [item for item, (key, sep, _) in zip(env, pairs, strict=True) if not key or not sep]:
        raise usage_error(f"--env: {bad[0]!r} is not KEY=VALUE")
    body: dict[str, Any] = {
        "name": name,
        "capabilities": caps,
        "env": {key: value for key, _, value in pairs},
        "handler": {"exec": argv} if exec_ else {"python": python},
    }
    for key, value in (("type", type), ("max_concurrency", max_concurrency), ("workdir", workdir)):
        if value is not None:
            body[key] = value
    try:
        return AgentSpec.model_validate(body)
    except ValidationError as exc:
        raise flag_error(exc, SPEC_FLAGS) from None


@app.command()
def spawn(
    ctx: typer.Context,
    file: Annotated[
        list[str] | None, typer.Option("--file", "-f", help="Agent documents (YAML; - for stdin)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="unique name")] = None,
    type: Annotated[str | None, typer.Option(help="agent type (default: the name)")] = None,
    cap: Annotated[list[str] | None, typer.Option("--cap", help="a capability; repeatable")] = None,
    max_concurrency: Annotated[int | None, typer.Option(help="tasks at once (default 1)")] = None,
    workdir: Annotated[str | None, typer.Option(help="working directory of its handlers")] = None,
    env: Annotated[list[str] | None, typer.Option(help="KEY=VALUE for the agent; repeatable")] = None,
    exec_: Annotated[
        list[str] | None,
        typer.Option("--exec", help="handler: a command line, or repeat --exec once per argument"),
    ] = None,
    python: Annotated[str | None, typer.Option(help="handler: package.module:function")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Spawn agents from -f FILE, or one from flags (--name, --cap..., --exec CMD | --python MOD:FN).

    With -o json: the agent, or with -f an array of agents.
    """
    flags_given = any(v is not None for v in (name, type, cap, max_concurrency, workdir, env, exec_, python))
    if file and flags_given:
        raise usage_error("give either -f FILE or flags (--name ...), not both")
    if file:
        specs = []
        for doc in load_files(file):
            if doc.kind != "Agent":
                raise CliError(f"{doc.filename}:{doc.line}: kind: {doc.kind} is not an Agent")
            specs += agent_specs(doc)
    else:
        specs = [
            spec_from_flags(name, type, cap or [], max_concurrency, workdir, env or [], exec_ or [], python)
        ]
    cli = client(ctx)
    agents = []
    for spec in specs:
        agent = cli.spawn_agent(spec)
        if output is Output.table:
            print(f"agent/{agent.name} spawned", flush=True)
        agents.append(agent)
    if output is not Output.table:
        render.emit(agents if file else agents[0], output, lambda: "")


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="only agents in this status")] = None,
    type: Annotated[str | None, typer.Option(help="only agents of this type")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """List agents (-o json: an array of agents)."""
    agents = client(ctx).list_agents(status=status, type=type).items
    render.emit(agents, output, lambda: render.agents_table(agents))


@app.command()
def show(
    ctx: typer.Context,
    ref: RefArg,
    output: OutputOpt = Output.table,
) -> None:
    """An agent, with its incarnations (pid, start, exit code, reason)."""
    agent = client(ctx).get_agent(ref)
    render.emit(agent, output, lambda: render.agent_view(agent))


@app.command()
def restart(
    ctx: typer.Context,
    ref: RefArg,
    output: OutputOpt = Output.table,
) -> None:
    """Restart an agent's process (also brings a `failed` agent back)."""
    agent = client(ctx).restart_agent(ref)
    render.emit(agent, output, lambda: f"agent/{agent.name} restarted")


@app.command()
def cordon(ctx: typer.Context, ref: RefArg, output: OutputOpt = Output.table) -> None:
    """Give the agent no new work (stored: a restart of hived keeps it); what it runs finishes."""
    agent = client(ctx).cordon_agent(ref, True)
    render.emit(agent, output, lambda: f"agent/{agent.name} cordoned")


@app.command()
def uncordon(ctx: typer.Context, ref: RefArg, output: OutputOpt = Output.table) -> None:
    """Let a cordoned agent take work again."""
    agent = client(ctx).cordon_agent(ref, False)
    render.emit(agent, output, lambda: f"agent/{agent.name} uncordoned")


@app.command("rm")
def remove(
    ctx: typer.Context,
    ref: RefArg,
    drain: Annotated[bool, typer.Option("--drain", help="let its running tasks finish first")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the drain")] = 60.0,
    output: OutputOpt = Output.table,
) -> None:
    """Stop an agent and remove it (-o json: the stopped agent)."""
    agent = client(ctx).delete_agent(ref, drain=drain, timeout=timeout)
    render.emit(agent, output, lambda: f"agent/{agent.name} removed")


def print_agent_log(
    cli: Client, ref: str, incarnation: int | None, follow: bool, output: Output, interval: float
) -> None:
    """Print the log of one incarnation; following, move on to the next incarnation's log when the
    agent restarts (after the old one is read to its end)."""
    agent = cli.get_agent(ref)
    ref = agent.id  # the full id: a name could be reused by a new agent meanwhile
    current = incarnation if incarnation is not None else agent.incarnation
    offset = 0
    while True:
        chunk = cli.agent_logs(ref, offset, current)
        if chunk.text:
            render.log_chunk(chunk, output)
        if chunk.offset != offset:
            offset = chunk.offset
            continue
        if not follow:
            return
        if incarnation is None and (latest := cli.get_agent(ref).incarnation) > current:
            current, offset = latest, 0
            continue
        time.sleep(interval)


@app.command()
def logs(
    ctx: typer.Context,
    ref: RefArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing new output (Ctrl-C ends)")
    ] = False,
    incarnation: Annotated[
        int | None, typer.Option(help="an earlier incarnation's log (default: the current one)")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """The agent's log: its stdout and stderr (-o json: one {text, offset} object per line)."""
    print_agent_log(client(ctx), ref, incarnation, follow, output, FOLLOW_INTERVAL)
