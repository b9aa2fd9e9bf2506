"""`hived`: the Hive daemon's command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from hived import __version__, paths
from hived.orchestrator import AgentOrchestrator
from hived.server import SocketInUse, serve
from hived.store.db import DatabaseError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hived",
        description="The Hive daemon: supervises agents and "
        "feeds them tasks. Serves its API on a Unix socket.",
    )
    parser.add_argument("--db", help="database URL (env HIVE_DB; default: SQLite hive.db in the state dir)")
    parser.add_argument("--socket", help="API socket path (env HIVE_SOCKET)")
    parser.add_argument("--state-dir", help="state directory (env HIVE_STATE_DIR)")
    parser.add_argument(
        "--stop-grace",
        type=float,
        default=10.0,
        help="seconds agents get between SIGTERM and SIGKILL at shutdown (default 10)",
    )
    parser.add_argument(
        "--drain-grace",
        type=float,
        default=10.0,
        help="on SIGTERM, seconds running tasks get to finish before agents stop (default 10)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--access-log", action="store_true", help="log every API request")
    parser.add_argument("--version", action="version", version=f"hived {__version__}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    state = Path(args.state_dir).expanduser() if args.state_dir else paths.state_dir()
    socket_path = Path(args.socket).expanduser() if args.socket else paths.socket_path()
    if args.state_dir and not args.socket and "HIVE_SOCKET" not in os.environ:
        socket_path = state / "hived.sock"
    db_url = args.db or paths.database_url(state)
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    orchestrator = AgentOrchestrator(db_url, state, socket_path=socket_path, stop_grace=args.stop_grace)
    try:
        import uvloop

        uvloop.run(serve(orchestrator, socket_path, access_log=args.access_log, drain_grace=args.drain_grace))
    except ImportError:
        asyncio.run(
            serve(orchestrator, socket_path, access_log=args.access_log, drain_grace=args.drain_grace)
        )
    except (SocketInUse, DatabaseError) as exc:
        print(f"hived: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
