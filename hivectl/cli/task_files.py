"""`hivectl task diff|artifacts|artifact`: what an attempt left besides its result (its workspace's
diff, its artifacts). Registered on `hivectl task` by hivectl/cli/task.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

from hivectl.cli.common import CliError, OutputOpt, client
from hivectl.cli.output import Output, emit
from hivectl.client.routes import Call

if TYPE_CHECKING:
    from hivectl.client.answers import Answer

AttemptOpt = Annotated[
    int | None, typer.Option("--attempt", min=1, help="that attempt (default: the latest that has one)")
]
RefArg = Annotated[
    str, typer.Argument(metavar="REF", help="a task id or a unique prefix", show_default=False)
]


def _path(ref: str, *rest: str) -> str:
    return "/".join([f"/tasks/{quote(ref, safe='')}", *(quote(part, safe="/") for part in rest)])


def _params(attempt: int | None) -> dict[str, Any]:
    return {"attempt": attempt} if attempt is not None else {}


def _model(name: str) -> Any:
    from hived.model import workspaces

    model = getattr(workspaces, name)
    return lambda resp: model.model_validate(resp.json())


def diff(
    ctx: typer.Context, ref: RefArg, attempt: AttemptOpt = None, output: OutputOpt = Output.table
) -> None:
    """The diff of the task's workspace against its base (`git diff base...branch`); -o json: with
    the branch, the commits and whether it was cut at max_diff_bytes."""
    found = client(ctx).send(Call("GET", _path(ref, "diff"), _model("AttemptDiff"), params=_params(attempt)))
    if output is Output.table:
        sys.stdout.write(found.diff)
        if found.diff_truncated:
            print(
                f"hivectl: the diff was cut at hived's max_diff_bytes ({found.diff_bytes} bytes)",
                file=sys.stderr,
            )
        return
    emit(found, output, lambda: "")


def artifacts(
    ctx: typer.Context, ref: RefArg, attempt: AttemptOpt = None, output: OutputOpt = Output.table
) -> None:
    """The files the task's attempts left in $HIVE_ARTIFACTS: attempt, name, size."""
    found = client(ctx).send(
        Call("GET", _path(ref, "artifacts"), _model("ArtifactList"), params=_params(attempt))
    )

    def table() -> str:
        lines = [f"{'ATTEMPT':<8} {'SIZE':>10}  NAME"]
        lines += [f"{item.attempt:<8} {item.size:>10}  {item.name}" for item in found.items]
        return "\n".join(lines) if found.items else "no artifacts"

    emit(found, output, table)


def artifact(
    ctx: typer.Context,
    ref: RefArg,
    name: Annotated[str, typer.Argument(help="its name, as `task artifacts` lists it", show_default=False)],
    out: Annotated[
        str | None, typer.Option("--output-file", "-o", help="write it here (default: stdout)")
    ] = None,
    attempt: AttemptOpt = None,
) -> None:
    """One artifact's content, to stdout or to a file (-o FILE)."""
    data = client(ctx).send(Call("GET", _path(ref, "artifacts", name), _content, params=_params(attempt)))
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        Path(out).write_bytes(data)
    except OSError as exc:
        raise CliError(f"-o {out}: {exc.strerror or exc}") from None


def _content(resp: Answer) -> bytes:
    return resp.content


def register(app: typer.Typer) -> None:
    app.command()(diff)
    app.command()(artifacts)
    app.command()(artifact)
