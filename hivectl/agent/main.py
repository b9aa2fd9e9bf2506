"""`hive-agent`: the agent process.

Spawned by hived (HIVE_AGENT_ID and HIVE_AGENT_INCARNATION in the environment), it registers under
that id and gets its handler, env and workdir from hived. Started by hand, it is an external agent
that registers with its own definition: flags, or an Agent document (`-f agent.yaml`).

Exit status: 0 after SIGTERM/SIGINT or when hived disowns the agent (deleted, superseded), 1 when it
cannot run (handler does not load, hived refuses it), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from hivectl.agent import attempt_dirs, containment, logcap
from hivectl.agent.connection import AgentGone, Connection, Refused
from hivectl.agent.handlers import Handler
from hivectl.agent.pick import make_handler
from hivectl.agent.runtime import (
    POLL_TIMEOUT_MARGIN,
    POLL_WAIT,
    AgentRuntime,
    Session,
    register,
)
from hivectl.agent.wire import RegisterRequest
from hivectl.endpoint import Endpoint

if TYPE_CHECKING:
    from hived.model.schemas import AgentSpec

log = logging.getLogger("hive-agent")

# Where a field of AgentSpec comes from on the command line, for error messages.
FLAG_OF = {
    "name": "--name",
    "type": "--type",
    "capabilities": "--cap",
    "max_concurrency": "--max-concurrency",
    "workdir": "--workdir",
    "heartbeat_interval": "--heartbeat-interval",
    "handler": "--exec/--python",
}
SPEC_FLAGS = (
    "name",
    "type",
    "cap",
    "max_concurrency",
    "workdir",
    "heartbeat_interval",
    "python",
    "exec_argv",
)


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hive-agent",
        description="A Hive agent. hived spawns it (HIVE_AGENT_ID set); started by hand it registers as "
        "an external agent: hive-agent --name N [--cap C]... (--exec CMD ARG... | --python MOD:FN), "
        "or hive-agent -f agent.yaml.",
    )
    spec = parser.add_argument_group("external agent")
    spec.add_argument("-f", "--file", help="an Agent document (YAML, kind: Agent)")
    spec.add_argument("--name", help="the agent's unique name")
    spec.add_argument("--type", help="the agent's type (default: its name)")
    spec.add_argument("--cap", action="append", help="a capability (repeat for more)")
    spec.add_argument("--max-concurrency", type=int, help="tasks at once (default 1)")
    spec.add_argument("--workdir", help="where handlers run (default: the current directory)")
    spec.add_argument("--heartbeat-interval", help="e.g. 2s (default 5s)")
    spec.add_argument("--python", metavar="MOD:FN", help="handler: a function called with the payload")
    spec.add_argument(
        "--exec",
        dest="exec_argv",
        nargs=argparse.REMAINDER,
        metavar="CMD",
        help="handler: a program and its arguments, one process per task (must come last)",
    )
    conn = parser.add_argument_group("connection")
    conn.add_argument("--socket", help="hived's Unix socket (env HIVE_SOCKET)")
    conn.add_argument("--url", help="hived over TCP, http://host:port (env HIVE_URL)")
    conn.add_argument("--token-file", help="a file holding the API token (env HIVE_TOKEN)")
    return parser


def external_spec(args: argparse.Namespace) -> AgentSpec:
    """The AgentSpec of an external agent, from `-f` or the flags. Raises UsageError. (pydantic and
    the document loader are imported only here: a spawned agent, the common case, never needs them.)"""
    from pydantic import ValidationError

    from hived.model.schemas import AgentSpec

    given = [name for name in SPEC_FLAGS if getattr(args, name) is not None]
    if args.file:
        if given:
            flags = ", ".join(FLAG_OF.get(n, "--" + n.replace("_", "-")) for n in given)
            raise UsageError(f"-f cannot be combined with {flags}")
        return spec_from_file(args.file)
    if not args.name:
        raise UsageError("give --name (or -f agent.yaml) to start an external agent")
    if args.exec_argv is not None and args.python:
        raise UsageError("give one handler: --exec or --python")
    if args.exec_argv is not None and not args.exec_argv:
        raise UsageError("--exec needs a program")
    if args.exec_argv is None and not args.python:
        raise UsageError("give a handler: --exec CMD [ARG]... or --python MOD:FN")
    data: dict[str, object] = {
        "name": args.name,
        "handler": {"exec": args.exec_argv} if args.exec_argv else {"python": args.python},
    }
    if args.type is not None:
        data["type"] = args.type
    if args.cap:
        data["capabilities"] = args.cap
    if args.max_concurrency is not None:
        data["max_concurrency"] = args.max_concurrency
    if args.workdir is not None:
        data["workdir"] = os.path.abspath(args.workdir)
    if args.heartbeat_interval is not None:
        data["heartbeat_interval"] = args.heartbeat_interval
    try:
        return AgentSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = FLAG_OF.get(str(err["loc"][0]), ".".join(str(p) for p in err["loc"])) if err["loc"] else ""
        message = str(err["msg"]).removeprefix("Value error, ")
        raise UsageError(f"{where}: {message}" if where else message) from None


def spec_from_file(filename: str) -> AgentSpec:
    """One `kind: Agent` document; a relative workdir is taken from the file's folder."""
    from hived.model.documents import DocumentError, YamlLimits, load_documents
    from hived.model.schemas import AgentSpec

    try:
        text = Path(filename).read_text()
    except OSError as exc:
        raise UsageError(f"{filename}: {exc.strerror or exc}") from None
    try:
        documents = load_documents(text, filename, YamlLimits.from_env(os.environ))
    except DocumentError as exc:
        raise UsageError(str(exc)) from None
    if len(documents) != 1 or documents[0].kind != "Agent":
        raise UsageError(f"{filename}: expected exactly one document, of kind: Agent")
    spec = documents[0].spec
    assert isinstance(spec, AgentSpec)
    if spec.replicas > 1:
        raise UsageError(f"{filename}: replicas: an external agent is one process; start one per replica")
    if spec.handler is None:
        raise UsageError(f"{filename}: handler: required (exec: [...] or python: module:function)")
    if spec.workdir and not os.path.isabs(spec.workdir):
        base = Path(filename).resolve().parent
        spec = spec.model_copy(update={"workdir": str((base / spec.workdir).resolve())})
    return spec


def registration(args: argparse.Namespace) -> RegisterRequest:
    """An external agent when a definition is given; else the agent hived spawned. Raises UsageError."""
    host, pid = socket.gethostname(), os.getpid()
    if args.file or any(getattr(args, name) is not None for name in SPEC_FLAGS):
        spec = external_spec(args).model_dump(mode="json", exclude_none=True)
        return RegisterRequest(spec=spec, pid=pid, hostname=host)
    agent_id = os.environ.get("HIVE_AGENT_ID")
    if not agent_id:
        raise UsageError("give --name ... (or -f agent.yaml); only hived starts hive-agent without one")
    try:
        incarnation = int(os.environ.get("HIVE_AGENT_INCARNATION", ""))
    except ValueError:
        raise UsageError("HIVE_AGENT_INCARNATION must be an integer") from None
    return RegisterRequest(agent_id=agent_id, incarnation=incarnation, pid=pid, hostname=host)


# hived's API tokens, by their shape (as hived/redact.py masks them): "hive_" and 43 URL-safe characters.
TOKEN = re.compile(r"(?<![A-Za-z0-9_-])hive_[A-Za-z0-9_-]{40,}")


class _Mask(logging.Filter):
    """Masks the agent's secret_env values, and anything shaped like a hived API token."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = TOKEN.sub("***", message) if "hive_" in message else message
        for secret in self.secrets:
            clean = clean.replace(secret, "***")
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def mask_secrets(secrets: list[str]) -> None:
    """The values of the agent's `secret_env`, and API tokens, never appear in its log."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(_Mask(secrets))


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        "%(asctime)s.%(msecs)03dZ %(levelname)s hive-agent[%(process)d]: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        token = Path(args.token_file).read_text().strip() if args.token_file else None
        request = registration(args)
    except OSError as exc:
        parser.error(f"--token-file: {exc.strerror or exc}")
    except UsageError as exc:
        parser.error(str(exc))
    logcap.cap_output()
    configure_logging()
    endpoint = Endpoint.from_env(socket=args.socket, url=args.url, token=token)
    return asyncio.run(run_agent(endpoint, request))


async def run_agent(endpoint: Endpoint, request: RegisterRequest) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig, stopping)
    conn = Connection(endpoint, timeout=POLL_WAIT + POLL_TIMEOUT_MARGIN)
    try:
        return await _register_and_run(conn, request, stopping)
    finally:
        await conn.aclose()


async def _register_and_run(conn: Connection, request: RegisterRequest, stopping: asyncio.Event) -> int:
    handler: Handler | None = None
    if request.spec is not None:  # our own handler: check that it loads before bothering hived
        spec = request.spec
        handler = _load_handler(spec["handler"], spec.get("workdir"), spec.get("env") or {})
        if handler is None:
            return 1
    try:
        reply = await register(conn, request, stopping)
    except AgentGone as exc:
        if request.spec is not None:
            log.error("registration refused: %s", exc)
            return 1
        log.info("hived does not expect this agent (%s): exiting", exc)
        return 0
    except Refused as exc:
        log.error("registration refused: %s", exc)
        return 1
    if reply is None:
        return 0
    mask_secrets([reply.env[key] for key in reply.secret_env if key in reply.env])
    if handler is None:
        if reply.handler is None:
            log.error("agent %s has no handler (exec or python)", reply.agent.name)
            return 1
        handler = _load_handler(reply.handler, reply.workdir, reply.env)
        if handler is None:
            return 1
    log.info(
        "registered as %s (id %s, incarnation %d, max_concurrency %d, workdir %s, hived %s)",
        reply.agent.name,
        reply.agent.id,
        reply.incarnation,
        reply.agent.max_concurrency,
        os.getcwd(),
        conn.endpoint.describe(),
    )
    handler_spec = request.spec["handler"] if request.spec is not None else reply.handler or {}
    handler = await attempt_dirs.for_agent(handler, handler_spec, reply, conn, request.spec is not None)
    runtime = AgentRuntime(conn, Session.from_reply(reply, handler), stopping=stopping)
    return await runtime.run()


def _load_handler(spec: dict[str, Any], workdir: str | None, env: dict[str, str]) -> Handler | None:
    try:
        path = prepare_workdir(workdir)
    except OSError as exc:
        log.error("workdir %s: %s", workdir, exc.strerror or exc)
        return None
    os.environ.update(env)  # the agent's env is the environment of a python handler too
    try:
        handler = make_handler(spec, path, env)
    except Exception as exc:  # whatever importing the user's module raises
        log.error("cannot load handler %s: %s: %s", spec, type(exc).__name__, exc)
        return None
    if spec.get("exec"):  # orphans of exec handlers come back to the agent, to be swept
        containment.become_subreaper()
    return handler


def _on_signal(sig: signal.Signals, stopping: asyncio.Event) -> None:
    if stopping.is_set():
        log.info("%s: already stopping", sig.name)
        return
    log.info("%s: taking no more work, stopping running tasks", sig.name)
    stopping.set()


def prepare_workdir(workdir: str | None) -> str:
    """Create the workdir if needed and make it the current directory; handlers run there."""
    path = os.path.abspath(workdir or os.getcwd())
    os.makedirs(path, exist_ok=True)
    os.chdir(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
