"""`hive-agent`: the agent process. Spawned by hived (HIVE_AGENT_ID in the environment), or
started by hand as an external agent that registers with its own definition."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from hivectl.agent.runtime import AgentRuntime
from hivectl.endpoint import Endpoint
from hived.api.schemas import AgentSpec, RegisterRequest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hive-agent",
        description="A Hive agent. Spawned by hived, or started by hand as an external agent: "
        "hive-agent --name N --cap C --exec CMD ARGS... | --python MOD:FN | -f agent.yaml",
    )
    parser.add_argument("-f", "--file", help="an Agent document (YAML)")
    parser.add_argument("--name")
    parser.add_argument("--type")
    parser.add_argument("--cap", action="append", default=[], help="a capability (repeat)")
    parser.add_argument("--max-concurrency", type=int, default=1)
    parser.add_argument("--workdir")
    parser.add_argument("--heartbeat-interval", default="5s")
    parser.add_argument("--python", help="handler: package.module:function")
    parser.add_argument("--socket", help="hived's socket (env HIVE_SOCKET)")
    parser.add_argument("--url", help="hived's URL over TCP (env HIVE_URL)")
    parser.add_argument("--token-file", help="file holding the agent token")
    parser.add_argument(
        "--exec",
        nargs=argparse.REMAINDER,
        dest="exec_argv",
        help="handler: the command and its arguments (must come last)",
    )
    return parser.parse_args(argv)


def external_spec(args: argparse.Namespace, parser_error: callable) -> AgentSpec:  # type: ignore[valid-type]
    try:
        if args.file:
            data = yaml.safe_load(Path(args.file).read_text())
            if not isinstance(data, dict):
                parser_error(f"{args.file}: not an Agent document")
            data.pop("kind", None)
            return AgentSpec.model_validate(data)
        if not args.name:
            parser_error("give --name (or -f agent.yaml)")
        handler = (
            {"exec": args.exec_argv} if args.exec_argv else {"python": args.python} if args.python else None
        )
        if handler is None:
            parser_error("give a handler: --exec CMD... or --python MOD:FN")
        return AgentSpec(
            name=args.name,
            type=args.type,
            capabilities=args.cap,
            max_concurrency=args.max_concurrency,
            workdir=args.workdir,
            heartbeat_interval=args.heartbeat_interval,
            handler=handler,
        )  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        parser_error(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
    except (OSError, yaml.YAMLError) as exc:
        parser_error(str(exc))
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s hive-agent[%(process)d]: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)

    def usage_error(message: str) -> None:
        print(f"hive-agent: error: {message}", file=sys.stderr)
        raise SystemExit(2)

    token = None
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            usage_error(f"--token-file: {exc}")
    endpoint = Endpoint.from_env(socket=args.socket, url=args.url, token=token)
    agent_id = os.environ.get("HIVE_AGENT_ID")
    if agent_id:
        request = RegisterRequest(
            agent_id=agent_id,
            incarnation=int(os.environ.get("HIVE_AGENT_INCARNATION", "0")),
            pid=os.getpid(),
            hostname=socket.gethostname(),
        )
    else:
        request = RegisterRequest(
            spec=external_spec(args, usage_error), pid=os.getpid(), hostname=socket.gethostname()
        )
    return asyncio.run(_run(endpoint, request))


async def _run(endpoint: Endpoint, request: RegisterRequest) -> int:
    runtime = AgentRuntime(endpoint, request)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.stopping.set)
    return await runtime.run()


if __name__ == "__main__":
    sys.exit(main())
