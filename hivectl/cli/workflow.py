"""`hivectl workflow validate|apply|list|show|run|status|runs|cancel|rerun|resume|approve|reject|signal|
context`."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live

from hivectl.cli import exitcodes, render
from hivectl.cli.common import CliError, OutputOpt, client, usage_error
from hivectl.cli.documents import apply_documents, load_files, read_text
from hivectl.cli.names import agent_names
from hivectl.cli.render import Output
from hivectl.cli.workflow_render import run_view, runs_table, workflow_view, workflows_table
from hivectl.client import Client
from hived.model.documents import Document
from hived.model.runs import Run
from hived.model.schedules import ScheduleSpec
from hived.model.workflow import WorkflowSpec

app = typer.Typer(help="Workflows: templates of steps (a DAG) and their runs.", no_args_is_help=True)

RunArg = Annotated[str, typer.Argument(help="run id or unique id prefix", metavar="RUN", show_default=False)]
StepArg = Annotated[str, typer.Argument(help="the approval step's id", metavar="STEP", show_default=False)]
FileArg = Annotated[
    list[str], typer.Argument(help="YAML files (- for stdin)", metavar="FILE...", show_default=False)
]


def workflow_docs(documents: list[Document]) -> list[WorkflowSpec]:
    return [doc.spec for doc in documents if isinstance(doc.spec, WorkflowSpec)]


@app.command()
def validate(files: FileArg, output: OutputOpt = Output.table) -> None:
    """Check workflow files offline (no daemon): schema, unknown keys and refs, cycles, CEL syntax;
    the Schedule documents in them too (cron, time zone, overlap, catchup)."""
    documents = load_files(files)
    specs = workflow_docs(documents)
    schedules = [doc.spec for doc in documents if isinstance(doc.spec, ScheduleSpec)]
    if not specs and not schedules:
        raise CliError(f"{', '.join(files)}: no kind: Workflow or kind: Schedule document")
    summary: list[dict[str, object]] = [
        {"workflow": s.name, "steps": len(s.steps), "params": sorted(s.params), "valid": True} for s in specs
    ]
    summary += [
        {"schedule": s.name, "cron": s.cron, "timezone": s.timezone, "valid": True} for s in schedules
    ]
    lines = [f"workflow/{s.name} valid ({len(s.steps)} steps)" for s in specs]
    lines += [f"schedule/{s.name} valid (cron {s.cron!r} in {s.timezone})" for s in schedules]
    render.emit(summary, output, lambda: "\n".join(lines))


@app.command()
def apply(ctx: typer.Context, files: FileArg, output: OutputOpt = Output.table) -> None:
    """Store the workflows of the files (a new version when one changed); Agent documents in the
    same files are applied too, like `hivectl apply -f`."""
    results = apply_documents(client(ctx), load_files(files), output)
    if output is not Output.table:
        render.emit(results, output, lambda: "")


@app.command("list")
def list_(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Workflow templates (the newest version of each)."""
    items = client(ctx).list_workflows().items
    render.emit(items, output, lambda: workflows_table(items))


@app.command()
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="workflow name or id", show_default=False)],
    version: Annotated[int | None, typer.Option(min=1, help="this version, not the newest")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """A workflow template: params and steps."""
    wf = client(ctx).get_workflow(name, version)
    render.emit(wf, output, lambda: workflow_view(wf))


def parse_params(pairs: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise usage_error(f"-p {pair!r}: expected key=value")
        params[key.strip()] = value
    return params


@app.command()
def run(
    ctx: typer.Context,
    workflow: Annotated[
        str, typer.Argument(help="a workflow name, or a YAML file to apply first", metavar="NAME|FILE")
    ],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value; repeatable")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="follow the run live; exit 0 only if it succeeded")
    ] = False,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="run this stored version, not the newest")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Start a run; prints its id (-o json: the run). With --wait, follows it to its end."""
    params = parse_params(param or [])
    cli = client(ctx)
    name = workflow
    if Path(workflow).is_file() or workflow.endswith((".yaml", ".yml")) or workflow == "-":
        documents = load_files([workflow])
        specs = workflow_docs(documents)
        run_by_others = {step.workflow for spec in specs for step in spec.steps if step.workflow}
        roots = [spec for spec in specs if spec.name not in run_by_others]  # not a sub-workflow
        if len(roots) != 1:
            raise CliError(
                f"{workflow}: expected one kind: Workflow document to run (besides the sub-workflows "
                f"it runs), found {len(roots)}"
            )
        apply_documents(cli, documents, Output.json)  # quietly: the run id is the output
        name = roots[0].name
    _started(cli, cli.execute_workflow(name, params, version), wait, output)


def _started(cli: Client, started: Run, wait: bool, output: Output) -> None:
    """A run just started: print its id, or follow it live (--wait)."""
    if not wait:
        render.emit(started, output, lambda: started.id)
        return
    follow(cli, started.id, output)


@app.command()
def status(
    ctx: typer.Context,
    run_ref: RunArg,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="follow the run live until it ends")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """A run and its steps (status, agent, duration). With --watch, exit 0 only if it succeeded."""
    cli = client(ctx)
    if watch:
        follow(cli, cli.get_run(run_ref).id, output)
        return
    current = cli.get_run(run_ref)
    names = agent_names(cli) if output is Output.table else {}
    render.emit(current, output, lambda: run_view(current, names))


def follow(cli: Client, run_id: str, output: Output) -> None:
    """Follow the run until it ends: a live table on a terminal, one line per step change when piped;
    then the final run (-o json: only the run object). Exit 1 unless it succeeded. Changes arrive as
    they happen (hived answers a long-poll at each change of the run); an outage of hived is ridden
    out (see hivectl.client.polling)."""
    if output is Output.table and sys.stdout.isatty():
        current = follow_live(cli, run_id)
    else:
        current = follow_lines(cli, run_id, output)
        names = agent_names(cli) if output is Output.table else {}
        render.emit(current, output, lambda: run_view(current, names))
    if current.status != "succeeded":
        raise typer.Exit(exitcodes.FAILURE)


LIVE_REFRESH = 1.0  # s: the live table redraws its running durations this often; changes show at once


def follow_live(cli: Client, run_id: str) -> Run:
    states = cli.watch_run(run_id, refresh=LIVE_REFRESH)
    current, names = next(states), {}
    with Live(run_view(current, names), auto_refresh=False, console=render.console()) as live:
        for current in states:
            if any(s.agent_id and s.agent_id not in names for s in current.steps):
                names = agent_names(cli)
            live.update(run_view(current, names), refresh=True)
    return current


def follow_lines(cli: Client, run_id: str, output: Output) -> Run:
    seen: dict[str, str] = {}
    for current in cli.watch_run(run_id):
        if output is not Output.table:
            continue
        for step in current.steps:
            if seen.get(step.id) != step.status:
                seen[step.id] = step.status
                if step.status != "pending":
                    print(f"step/{step.id} {step.status}", flush=True)
    return current


@app.command()
def runs(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="only runs in this status")] = None,
    workflow: Annotated[str | None, typer.Option(help="only runs of this workflow")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many, newest first")] = 100,
    output: OutputOpt = Output.table,
) -> None:
    """Runs, newest first."""
    items = client(ctx).list_runs(status, workflow, limit).items
    render.emit(items, output, lambda: runs_table(items))


@app.command()
def cancel(ctx: typer.Context, run_ref: RunArg, output: OutputOpt = Output.table) -> None:
    """Cancel a run: its running steps' tasks are cancelled."""
    done = client(ctx).cancel_run(run_ref)
    render.emit(done, output, lambda: f"run/{done.id} {done.status}")


@app.command()
def rerun(
    ctx: typer.Context,
    run_ref: RunArg,
    from_step: Annotated[
        str | None, typer.Option("--from", help="run this step and what follows it again", metavar="STEP")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="follow the run live; exit 0 only if it succeeded")
    ] = False,
    output: OutputOpt = Output.table,
) -> None:
    """A new run of a run that ended, keeping the results of the steps that succeeded: the failed,
    cancelled and skipped steps (or --from STEP) and what follows them run again. Prints its id."""
    cli = client(ctx)
    _started(cli, cli.rerun_run(run_ref, from_step), wait, output)


@app.command()
def resume(
    ctx: typer.Context,
    run_ref: RunArg,
    add_budget: Annotated[
        float | None,
        typer.Option("--add-budget", help="raise the run's budget (and its steps') by COST dollars"),
    ] = None,
    add_tokens: Annotated[
        int | None, typer.Option("--add-tokens", help="raise its token budget by N")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Resume a run a budget paused (status paused); refused while it would still be over its budget."""
    resumed = client(ctx).resume_run(run_ref, add_budget, add_tokens)
    render.emit(resumed, output, lambda: f"run/{resumed.id} {resumed.status}")


def _decide(
    ctx: typer.Context,
    run_ref: str,
    step: str,
    approve: bool,
    comment: str | None,
    output: Output,
    rework: str | None = None,
) -> None:
    cli = client(ctx)
    if approve:
        decided = cli.approve_step(run_ref, step, getpass.getuser(), comment)
    else:
        decided = cli.reject_step(run_ref, step, getpass.getuser(), comment, rework)
    verb = "approved" if approve else f"rejected, step/{rework} runs again" if rework else "rejected"
    render.emit(decided, output, lambda: f"run/{decided.id} step/{step} {verb}")


@app.command()
def approve(
    ctx: typer.Context,
    run_ref: RunArg,
    step: StepArg,
    comment: Annotated[str | None, typer.Option(help="a note kept with the decision")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Let a run go past an approval gate."""
    _decide(ctx, run_ref, step, True, comment, output)


@app.command()
def reject(
    ctx: typer.Context,
    run_ref: RunArg,
    step: StepArg,
    comment: Annotated[str | None, typer.Option(help="why; kept as the step's error")] = None,
    rework: Annotated[
        str | None,
        typer.Option(
            metavar="STEP2",
            help="run STEP2 (before the gate) and what follows it again, the comment in "
            "${{ steps.<gate>.comment }}; at most max_rework times",
        ),
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Fail an approval gate (and with it the run, unless the step may fail); with --rework, send
    the run back to an earlier step instead."""
    _decide(ctx, run_ref, step, False, comment, output, rework)


@app.command()
def signal(
    ctx: typer.Context,
    run_ref: RunArg,
    name: Annotated[str, typer.Argument(help="the signal's name (wait_for: {signal: NAME})", metavar="NAME")],
    data: Annotated[
        str | None, typer.Option(help="a JSON value, or @FILE: the waiting step's result")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Signal a run: its steps waiting for NAME succeed with the data (exit 1 if none waits)."""
    value = None
    if data is not None:
        text = read_text(data[1:]) if data.startswith("@") else data
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise usage_error(f"--data: not JSON ({exc}); quote strings: '\"text\"'") from None
    done = client(ctx).signal_run(run_ref, name, value)
    render.emit(done, output, lambda: f"run/{done.id} signal/{name} delivered")


@app.command()
def context(
    ctx: typer.Context,
    run_ref: RunArg,
    key: Annotated[str | None, typer.Argument(help="one key (default: all)", show_default=False)] = None,
    set_: Annotated[str | None, typer.Option("--set", help="write this JSON value to KEY")] = None,
    expect_version: Annotated[
        int | None, typer.Option(min=0, help="with --set: only if KEY is at this version (0: absent)")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Read or compare-and-set the run's shared context (exit 1 on a version conflict)."""
    cli = client(ctx)
    if set_ is None:
        if expect_version is not None:
            raise usage_error("--expect-version needs --set")
        if key is not None:  # one key: the entry itself, for scripts
            entry = cli.get_context(run_ref, key)
            render.emit(entry, output, lambda: json.dumps(entry.value))
            return
        entries = cli.run_context(run_ref)
        table = render.grid(["KEY", "VERSION", "VALUE"])
        for e in entries:
            table.add_row(e.key, str(e.version), json.dumps(e.value))
        render.emit(entries, output, lambda: table)
        return
    if key is None:
        raise usage_error("--set needs a KEY")
    try:
        value = json.loads(set_)
    except ValueError as exc:
        raise usage_error(f"--set: not JSON ({exc}); quote strings: '\"text\"'") from None
    entry = cli.put_context(run_ref, key, value, expect_version)
    render.emit(entry, output, lambda: f"context/{entry.key} version {entry.version}")
