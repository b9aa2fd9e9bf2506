"""`hivectl`: the command line of Hive, in kubectl's habits (nouns, verbs, `-o json` for scripts).

Commands are thin (parse, call the client, render); every failure ends here, in `main`, as one
line on stderr and an exit code from `exitcodes`.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from hivectl.cli import agent, apply, daemon, events, exitcodes, render, task, token, workflow
from hivectl.cli.common import CliError, GlobalOptions, OutputOpt, client, endpoint
from hivectl.cli.render import Output
from hivectl.client import ClientError
from hived.model import __version__

app = typer.Typer(
    name="hivectl",
    help="Drive the Hive daemon (hived): agents, tasks, workflows.",
    epilog=exitcodes.EPILOG,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(daemon.app, name="daemon")
app.add_typer(agent.app, name="agent")
app.add_typer(task.app, name="task")
app.add_typer(workflow.app, name="workflow")
app.add_typer(token.app, name="token")
app.command("apply")(apply.apply)
app.command("events")(events.events)


def _version(value: bool) -> None:
    if value:
        print(f"hivectl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    socket: Annotated[
        str | None, typer.Option(envvar="HIVE_SOCKET", help="hived's Unix socket", show_default=False)
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(envvar="HIVE_URL", help="hived over TCP: http://host:port", show_default=False),
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="HIVE_TOKEN", help="API token (for --url)", show_default=False)
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    ctx.obj = GlobalOptions(socket=socket, url=url, token=token)


@app.command("tui")
def tui(
    ctx: typer.Context,
    refresh: Annotated[float, typer.Option(min=0.5, help="seconds between re-reads of RSS/CPU")] = 5.0,
) -> None:
    """Open the live dashboard (the same as hive-tui) on this command's endpoint."""
    from tui.main import create_app  # Textual is imported only when the dashboard opens

    create_app(endpoint(ctx), refresh=refresh).run()


@app.command("status")
def status(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Health, agents by status, tasks by status, queue depth."""
    cli = client(ctx)
    health = cli.health()
    data = cli.status()
    render.emit(data, output, lambda: render.status_view(data, health.status))


def _usage_line(exc: click_exceptions.UsageError) -> str:
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    message = exc.format_message().replace("Value error, ", "")  # pydantic's prefix, mid-message
    return f"error: {message}{hint}"


def main(argv: list[str] | None = None) -> int:
    """Run hivectl; returns the exit code (never raises, never prints a traceback)."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="hivectl", standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as exc:
        exc.show()  # the help text of the group
        return exitcodes.USAGE
    except click_exceptions.UsageError as exc:
        print(_usage_line(exc), file=sys.stderr)
        return exitcodes.USAGE
    except click_exceptions.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return exitcodes.INTERRUPTED
    except CliError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.code
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exitcodes.for_error(exc)
    except KeyboardInterrupt:
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        # `hivectl task list | head`: the reader left; quiet the flush at exit too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exitcodes.OK
    except Exception as exc:  # a bug: still one line, never a traceback
        print(f"error: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exitcodes.FAILURE
    return result if isinstance(result, int) else exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())
