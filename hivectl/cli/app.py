"""hivectl's command tree: the global options, and every command, imported only when it runs (or when
`hivectl --help` lists them). `run` ends every failure here, as one line on stderr and an exit code
from `exitcodes`.

A command module imports what its command needs (pydantic and the schemas, YAML, CEL, psutil, rich
for tables); `hivectl status` imports none of them, and no command imports the others' modules.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click
    from typer._click import Command, Context
    from typer._click import exceptions as click_exceptions
    from typer._click.core import ParameterSource
except ImportError:  # pragma: no cover
    from click import Command, Context  # type: ignore[assignment]
    from click import exceptions as click_exceptions  # type: ignore[no-redef]
    from click.core import ParameterSource  # type: ignore[assignment]

from hivectl.cli import exitcodes
from hivectl.cli.common import CliError, GlobalOptions, endpoint, usage_error
from hivectl.client import ClientError
from hived.model import __version__

# Every command, in the order `hivectl --help` lists them (commands, then groups of commands).
COMMAND_NAMES = (
    "apply", "events", "tui", "status", "daemon", "agent", "task", "queue", "workflow", "limit", "schedule",
    "node", "token", "usage",
)


def tui(
    ctx: typer.Context,
    refresh: Annotated[float, typer.Option(min=0.5, help="seconds between re-reads of RSS/CPU")] = 5.0,
) -> None:
    """Open the live dashboard (the same as hive-tui) on this command's endpoint."""
    from tui.main import create_app  # Textual is imported only when the dashboard opens

    create_app(endpoint(ctx), refresh=refresh).run()


def command_source(name: str) -> typer.Typer | Callable[..., Any]:
    """The Typer app (a group) or the function of the command `name`, its module imported now."""
    match name:
        case "apply":
            from hivectl.cli.apply import apply

            return apply
        case "events":
            from hivectl.cli.events import events

            return events
        case "tui":
            return tui
        case "status":
            from hivectl.cli.status import status

            return status
        case "daemon":
            from hivectl.cli import daemon

            return daemon.app
        case "agent":
            from hivectl.cli import agent

            return agent.app
        case "task":
            from hivectl.cli import task

            return task.app
        case "queue":
            from hivectl.cli import queue

            return queue.app
        case "workflow":
            from hivectl.cli import workflow

            return workflow.app
        case "limit":
            from hivectl.cli import limit

            return limit.app
        case "schedule":
            from hivectl.cli import schedule

            return schedule.app
        case "node":
            from hivectl.cli import node

            return node.app
        case "token":
            from hivectl.cli import token

            return token.app
        case "usage":
            from hivectl.cli.usage import usage

            return usage
    raise KeyError(name)


def load_command(name: str) -> Command:
    """The click command of `name`, as `app.add_typer(...)` / `app.command(name)` would have made it."""
    source = command_source(name)
    if isinstance(source, typer.Typer):
        group = typer.main.get_group(source)
        group.name = name
        return group
    single = typer.Typer(add_completion=False)
    single.command(name)(source)
    return typer.main.get_command(single)


class LazyCommands(MutableMapping[str, Command]):
    """The root group's commands: every name is known, each command is made when first looked up."""

    def __init__(self, made: Mapping[str, Command]) -> None:
        self.made = dict(made)

    def __getitem__(self, name: str) -> Command:
        if name not in self.made:
            if name not in COMMAND_NAMES:
                raise KeyError(name)
            self.made[name] = load_command(name)
        return self.made[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self.made[name] = command

    def __delitem__(self, name: str) -> None:
        del self.made[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMAND_NAMES, *self.made]))

    def __len__(self) -> int:
        return len(set(COMMAND_NAMES) | set(self.made))


class LazyGroup(TyperGroup):
    """hivectl's root group: `hivectl task ...` imports the task commands only (click's "lazy loading
    of subcommands"); names are listed (and typos suggested) without importing anything."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = LazyCommands(self.commands)

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)


app = typer.Typer(
    name="hivectl",
    cls=LazyGroup,
    help="Drive the Hive daemon (hived): agents, tasks, workflows.",
    epilog=exitcodes.EPILOG,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"hivectl {__version__}")
        raise typer.Exit()


def read_token_file(path: Path) -> str:
    """The token in the first line of `path` (surrounding blanks stripped); a usage error if unreadable."""
    try:
        with path.open(encoding="utf-8") as file:
            token = file.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise usage_error(f"--token-file: {path}: {reason}") from None
    if not token:
        raise usage_error(f"--token-file: {path}: the first line holds no token")
    return token


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
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="read the API token from the first line of FILE (instead of --token/HIVE_TOKEN)",
            metavar="FILE",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    if token_file is not None:
        if ctx.get_parameter_source("token") is ParameterSource.COMMANDLINE:
            raise usage_error("give --token or --token-file, not both")
        token = read_token_file(token_file)
    ctx.obj = GlobalOptions(socket=socket, url=url, token=token)


def _usage_line(exc: click_exceptions.UsageError) -> str:
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    message = exc.format_message().replace("Value error, ", "")  # pydantic's prefix, mid-message
    return f"error: {message}{hint}"


def run(argv: list[str] | None = None) -> int:
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
