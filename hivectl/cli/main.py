"""`hivectl`: the command line of Hive, in kubectl's habits."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from hivectl.cli import agent, apply, daemon, task
from hivectl.cli.common import OutputOpt, client
from hivectl.cli.render import Output, details, dump
from hivectl.client import ClientError
from hived import __version__

EPILOG = (
    "Exit codes: 0 success, 1 failure (a failed task with --wait included), 2 usage error, "
    "3 daemon not reachable, 4 not authorized."
)

app = typer.Typer(
    name="hivectl",
    help="Drive the Hive daemon (hived): agents, tasks, workflows.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(daemon.app, name="daemon")
app.add_typer(agent.app, name="agent")
app.add_typer(task.app, name="task")
app.command("apply")(apply.apply)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hivectl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    socket: Annotated[str | None, typer.Option(envvar="HIVE_SOCKET", help="hived's Unix socket")] = None,
    url: Annotated[str | None, typer.Option(envvar="HIVE_URL", help="hived's URL over TCP")] = None,
    token: Annotated[str | None, typer.Option(envvar="HIVE_TOKEN", help="API token (TCP)")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    ctx.obj = {"socket": socket, "url": url, "token": token}


@app.command("status")
def status(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Health, agents by status, tasks by status, queue depth."""
    data = client(ctx).status()
    if output is not Output.table:
        return dump(data, output)
    details(
        {
            "version": data["version"],
            "database": data["database"],
            "queue depth": data["queue_depth"],
            "agents": ", ".join(f"{k} {v}" for k, v in sorted(data["agents"].items())) or "none",
            "tasks": ", ".join(f"{k} {v}" for k, v in sorted(data["tasks"].items())) or "none",
        },
        output,
    )


def main(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="hivectl", standalone_mode=False)
    except click_exceptions.UsageError as exc:
        exc.show()
        return 2
    except typer.Abort:
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except ClientError as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
