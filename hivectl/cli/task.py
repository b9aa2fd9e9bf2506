"""`hivectl task submit|list|show|cancel|retry|logs` (and `send|attach`: hivectl/cli/task_terminal.py).

Tables are built by render.py, imported only when one is printed: `task submit` (and -o json) need
no rich."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from hivectl.cli import exitcodes, task_terminal
from hivectl.cli.budget import BudgetTokensOpt, BudgetUsdOpt, EstimateTokensOpt, EstimateUsdOpt, pair
from hivectl.cli.common import OutputOpt, client, flag_error, usage_error
from hivectl.cli.names import agent_names, names_of
from hivectl.cli.output import Output, emit, log_chunk
from hivectl.client import TASK_FINAL, Routes
from hived.model.tasks import TaskSubmit

if TYPE_CHECKING:
    from rich.console import RenderableType

    from hived.model.tasks import Task

app = typer.Typer(help="Tasks: units of work, queued and routed to agents.", no_args_is_help=True)

REF_HELP = "task id or unique id prefix"
RefArg = Annotated[str, typer.Argument(help=REF_HELP, metavar="REF", show_default=False)]
FOLLOW_INTERVAL = 0.5
FILE_HELP = (
    'JSON lines (- for stdin): one task per line, a POST /tasks body like {"type": "build", '
    '"payload": {...}}. Every line is checked before any is sent; they go 1,000 to a request, each '
    "request all-or-none. Prints the ids, one a line (-o json: a list)"
)
SUBMIT_FLAGS = {
    "type": "TYPE",
    "payload": "--payload",
    "priority": "--priority",
    "requires": "--requires",
    "max_attempts": "--max-attempts",
    "timeout": "--timeout",
    "stall_timeout": "--stall-timeout",
    "success_when": "--success-when",
    "idempotency_key": "--idempotency-key",
    "limits": "--limit",
    "labels": "--label",
    "delay": "--delay",
    "at": "--at",
    "expires_in": "--expires-in",
    "budget": "--budget-usd/--budget-tokens",
    "estimate": "--estimate-usd/--estimate-tokens",
}
UNITS_RE = re.compile(r"^(.*)\*(-?\d+)$")


LimitOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--limit",
        metavar="NAME[:KEY][*UNITS]",
        help="a limit the task takes (kind: Limit), KEY a literal or ${{ payload.x }}; repeatable",
    ),
]
FileOpt = Annotated[
    str | None, typer.Option("--file", "-f", metavar="FILE", show_default=False, help=FILE_HELP)
]
WaitOpt = Annotated[
    bool, typer.Option("--wait", help="follow the task (-f: each) to its end; exit 0 only if it completed")
]
DelayOpt = Annotated[
    str | None, typer.Option(help="start no sooner than this from now, like 10m (status scheduled)")
]
AtOpt = Annotated[
    str | None, typer.Option(help="start no sooner than this ISO 8601 time (no offset: local; past: now)")
]
ExpiresOpt = Annotated[
    str | None, typer.Option(help="not started this long after submit, like 1h: it fails (expired)")
]
LabelOpt = Annotated[
    list[str] | None,
    typer.Option("--label", metavar="KEY=VALUE", help="a label; repeatable", show_default=False),
]


def parse_payload(raw: str | None) -> dict[str, Any]:
    """`--payload`: a JSON object, or `@file` holding one (`@-`: stdin)."""
    if raw is None:
        return {}
    text = raw
    if raw.startswith("@"):
        source = raw[1:]
        try:
            text = typer.get_text_stream("stdin").read() if source == "-" else Path(source).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise usage_error(f"--payload: {source}: {reason}") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise usage_error(f"--payload: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise usage_error(
            f'--payload: must be a JSON object like \'{{"key": "value"}}\', not {type(value).__name__}'
        )
    return value


def parse_limit(text: str) -> dict[str, Any]:
    """`--limit NAME[:KEY][*UNITS]` -> {name, key, units} (KEY may be a `${{ payload.x }}` template;
    the values are checked by the schema, which names the field)."""
    ref: dict[str, Any] = {}
    if match := UNITS_RE.match(text):
        text, ref["units"] = match.group(1), int(match.group(2))
    name, sep, key = text.partition(":")
    if not name:
        example = "like anthropic*2 or repo:${{ payload.repo }}"
        raise usage_error(f"--limit: {text!r}: give NAME[:KEY][*UNITS], {example}")
    ref["name"] = name
    if sep:
        ref["key"] = key
    return ref


def task_view(task: Task, names: Mapping[str, str]) -> RenderableType:
    from hivectl.cli import render

    return render.task_view(task, names)


def tasks_table(tasks: Sequence[Task], names: Mapping[str, str]) -> RenderableType:
    from hivectl.cli import render

    return render.tasks_table(tasks, names)


@app.command()
def submit(
    ctx: typer.Context,
    type: Annotated[
        str | None, typer.Argument(help="task type (or -f FILE)", metavar="TYPE", show_default=False)
    ] = None,
    payload: Annotated[str | None, typer.Option(help="a JSON object, or @FILE holding one")] = None,
    priority: Annotated[int, typer.Option(help="0-9, higher runs first")] = 5,
    requires: Annotated[
        list[str] | None, typer.Option(help="a capability the agent must have; repeatable")
    ] = None,
    max_attempts: Annotated[int, typer.Option(help="attempts before the task fails")] = 3,
    timeout: Annotated[str | None, typer.Option(help="per attempt, like 30s or 5m")] = None,
    stall_timeout: Annotated[str | None, typer.Option(help="end an attempt silent for this long")] = None,
    success_when: Annotated[
        str | None, typer.Option(help="CEL over result, like 'result.ok == true'")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="submitting the same key again returns the first task")
    ] = None,
    limits: LimitOpt = None,
    label: LabelOpt = None,
    delay: DelayOpt = None,
    at: AtOpt = None,
    expires_in: ExpiresOpt = None,
    budget_usd: BudgetUsdOpt = None,
    budget_tokens: BudgetTokensOpt = None,
    estimate_usd: EstimateUsdOpt = None,
    estimate_tokens: EstimateTokensOpt = None,
    file: FileOpt = None,
    wait: WaitOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Queue a task; prints its id (-o json: the task; with --wait: the finished task). With -f, queue
    the tasks of a file (with --wait: the finished tasks, as task list shows them)."""
    if file is not None:
        submit_file(ctx, file, type, wait, output)
        return
    if type is None:
        raise usage_error("give a task TYPE, or -f FILE of tasks (see 'hivectl task submit --help')")
    body: dict[str, Any] = {
        "type": type,
        "payload": parse_payload(payload),
        "priority": priority,
        "requires": requires or [],
        "max_attempts": max_attempts,
    }
    from hivectl.cli.task_bulk import queue_fields

    limit_refs = [parse_limit(text) for text in limits] if limits else None
    optional = {
        "timeout": timeout,
        "stall_timeout": stall_timeout,
        "success_when": success_when,
        "idempotency_key": idempotency_key,
        "limits": limit_refs,
        **queue_fields(label, delay, at, expires_in),
        **{"budget": pair(budget_usd, budget_tokens), "estimate": pair(estimate_usd, estimate_tokens)},
    }
    body |= {key: value for key, value in optional.items() if value is not None}
    submit_one(ctx, body, wait, output)


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def submit_one(ctx: typer.Context, body: dict[str, Any], wait: bool, output: Output) -> None:
    try:
        spec = TaskSubmit.model_validate(body)
    except ValidationError as exc:
        raise flag_error(exc, SUBMIT_FLAGS) from None
    cli = client(ctx)
    task = cli.submit_task(spec)
    if not wait:
        emit(task, output, lambda: task.id)
        return
    detail = cli.wait_task(task.id)
    names = names_of(cli, detail) if output is Output.table else {}
    emit(detail, output, lambda: task_view(detail, names))
    if detail.status != "completed":
        raise typer.Exit(exitcodes.FAILURE)


def submit_file(ctx: typer.Context, name: str, type: str | None, wait: bool, output: Output) -> None:
    """`submit -f`: every line checked, then sent in batches; --wait follows every task to its end."""
    from hivectl.cli.task_file import load_lines, submit_lines

    if type is not None:
        raise usage_error("give a TYPE or -f FILE, not both")
    given = [flag for field, flag in SUBMIT_FLAGS.items() if field != "type" and _given(ctx, field)]
    if given:
        raise usage_error(f"{given[0]}: not with -f (each line of the file holds its own fields)")
    lines = load_lines(name)
    cli = client(ctx)
    ids, error = submit_lines(cli, lines)
    if error is not None or not wait:
        if ids:
            emit(ids, output, lambda: "\n".join(ids))
        if error is not None:
            raise error
        return
    ended = [cli.wait_task(task_id) for task_id in ids]
    names = agent_names(cli) if output is Output.table else {}
    emit(ended, output, lambda: tasks_table(ended, names))
    if any(task.status != "completed" for task in ended):
        raise typer.Exit(exitcodes.FAILURE)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="only this status (failed: the dead letters)")] = None,
    type: Annotated[str | None, typer.Option(help="only this type")] = None,
    agent: Annotated[str | None, typer.Option(help="only tasks of this agent (name or id)")] = None,
    run: Annotated[
        str | None, typer.Option(help="only the tasks of this workflow run (id or prefix)")
    ] = None,
    label: LabelOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 100,
    output: OutputOpt = Output.table,
) -> None:
    """List tasks, newest first (-o json: an array of tasks)."""
    from hivectl.cli.task_bulk import parse_labels

    labels = parse_labels(label)
    cli = client(ctx)
    found = cli.list_tasks(status=status, type=type, agent=agent, limit=limit, run=run, labels=labels)
    tasks = found.items
    names = agent_names(cli) if output is Output.table and tasks else {}
    emit(tasks, output, lambda: tasks_table(tasks, names))


@app.command()
def show(
    ctx: typer.Context,
    ref: RefArg,
    output: OutputOpt = Output.table,
) -> None:
    """A task, with its result or error and the history of its attempts."""
    cli = client(ctx)
    task = cli.get_task(ref)
    names = names_of(cli, task) if output is Output.table else {}
    emit(task, output, lambda: task_view(task, names))


OptionalRef = Annotated[
    str | None,
    typer.Argument(help=REF_HELP + " (or --status S for many)", metavar="[REF]", show_default=False),
]
BulkStatus = Annotated[
    str | None, typer.Option(help="every task in this status (with --type, --label): asks first")
]
BulkType = Annotated[str | None, typer.Option(help="with --status: only this type")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="with --status: act without asking")]


def _one_or_many(
    ctx: typer.Context,
    action: str,
    ref: str | None,
    status: str | None,
    type: str | None,
    label: list[str] | None,
    yes: bool,
    output: Output,
) -> None:
    if ref is not None:
        if status is not None or type is not None or label or yes:
            raise usage_error("give a task REF, or --status (with --type, --label, --yes), not both")
        cli = client(ctx)
        task = cli.cancel_task(ref) if action == "cancel" else cli.retry_task(ref)
        emit(task, output, lambda: f"task/{task.id} {task.status}")
        return
    if status is None:
        if type is not None or label or yes:
            raise usage_error("--type, --label and --yes go with --status")
        raise usage_error(f"give a task REF, or --status S (see 'hivectl task {action} --help')")
    from hivectl.cli.task_bulk import bulk, parse_labels

    bulk(ctx, action, status, type, parse_labels(label), yes, output)


@app.command()
def cancel(
    ctx: typer.Context,
    ref: OptionalRef = None,
    status: BulkStatus = None,
    type: BulkType = None,
    label: LabelOpt = None,
    yes: YesOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Cancel a queued or running task; with --status, every task in that status (asks first)."""
    _one_or_many(ctx, "cancel", ref, status, type, label, yes, output)


@app.command()
def retry(
    ctx: typer.Context,
    ref: OptionalRef = None,
    status: BulkStatus = None,
    type: BulkType = None,
    label: LabelOpt = None,
    yes: YesOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Queue a failed or cancelled task again; with --status (failed or cancelled), every such task."""
    _one_or_many(ctx, "retry", ref, status, type, label, yes, output)


@app.command()
def logs(
    ctx: typer.Context,
    ref: RefArg,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing until the task ends")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Captured output of the task's attempts (-o json: one {text, offset} object per line)."""
    cli = client(ctx)
    task_id = cli.get_task(ref).id  # the full id, so that a follow never becomes ambiguous
    offset = 0
    while True:
        # Read the status before the log: output written before the end is then never missed.
        final = not follow or cli.poll(Routes.get_task(task_id)).status in TASK_FINAL
        chunk = cli.poll(Routes.task_logs(task_id, offset))
        if chunk.text:
            log_chunk(chunk, output)
        if chunk.offset == offset:
            if final:
                return
            time.sleep(FOLLOW_INTERVAL)
        offset = chunk.offset


task_terminal.register(app)  # `task send`, `task attach`: interactive tasks
from hivectl.cli import task_files  # noqa: E402 - diff, artifacts, artifact

task_files.register(app)
