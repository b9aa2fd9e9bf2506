"""`hived`: the Hive daemon's command line."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys

from hived import logging_setup
from hived.config import resolve
from hived.model import __version__
from hived.model.documents import DocumentError
from hived.orchestrator import AgentOrchestrator
from hived.server import SocketInUse, serve
from hived.store.db import DatabaseError
from hived.store.files import UnsafeStateDir, private_dir
from hived.watchdog import threshold_from_env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hived",
        description="The Hive daemon: supervises agents and feeds them tasks. Serves its API on a Unix "
        "socket. Settings: flags, then environment variables, then --config, then defaults.",
    )
    parser.add_argument("--config", help="hived.yaml: a kind: Daemon document and the Agents to keep running")
    parser.add_argument("--check-config", action="store_true", help="validate --config and exit")
    parser.add_argument("--db", help="database URL (env HIVE_DB; default: SQLite hive.db in the state dir)")
    parser.add_argument("--socket", help="API socket path (env HIVE_SOCKET)")
    parser.add_argument("--state-dir", help="state directory (env HIVE_STATE_DIR)")
    parser.add_argument(
        "--stop-grace", type=float, help="seconds agents get between SIGTERM and SIGKILL (10)"
    )
    parser.add_argument(
        "--drain-grace",
        type=float,
        help="on SIGTERM, seconds running tasks get to finish before agents stop (10)",
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--log-format", choices=["text", "json"], help="stderr log lines: text or JSON (env HIVE_LOG_FORMAT)"
    )
    parser.add_argument("--access-log", action="store_true", help="log every API request")
    parser.add_argument(
        "--listen", help="also serve TCP on HOST:PORT, tokens required (env HIVE_LISTEN; default: off)"
    )
    parser.add_argument("--tls-cert", help="TLS certificate (PEM) for --listen")
    parser.add_argument("--tls-key", help="TLS private key (PEM) for --listen")
    parser.add_argument(
        "--standby",
        action="store_true",
        default=None,
        help="if another hived owns the database, wait for it instead of exiting (warm standby)",
    )
    parser.add_argument(
        "--node", help="this hived's node name (PostgreSQL; env HIVE_NODE; default: the host name)"
    )
    parser.add_argument("--version", action="version", version=f"hived {__version__}")
    return parser.parse_args(argv)


# The cyclic garbage collector's generations: a young collection after 50,000 allocations (Python's
# default is 700) and a full one after 100 of those (default 10 x 10). A daemon holding a large queue
# in memory otherwise stops its event loop for a full collection every few seconds under a stream of
# submits (measured by bench/abuse.py: /healthz p99 241 ms with the defaults, 21 ms with these).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Fewer, later collections; what was loaded at start (modules, settings) is never scanned again."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = resolve(args.config, vars(args))
    except DocumentError as exc:
        print(f"hived: {exc}", file=sys.stderr)
        return 1
    if args.check_config:
        print(
            f"{args.config or '(no config file)'}: ok: database {settings.database}, "
            f"socket {settings.socket}, "
            f"{len(settings.agents)} declared agents, {len(settings.declared_limits)} declared limits"
        )
        return 0
    try:
        threshold_from_env()
    except ValueError as exc:
        print(f"hived: {exc}", file=sys.stderr)
        return 1
    logging_setup.configure(settings.log_level, settings.log_format)
    try:
        private_dir(settings.state_dir)
    except (UnsafeStateDir, OSError) as exc:
        print(f"hived: state dir: {exc}", file=sys.stderr)
        return 1
    orchestrator = AgentOrchestrator(
        settings.database,
        settings.state_dir,
        socket_path=settings.socket,
        stop_grace=settings.stop_grace,
        declared=settings.agents,
        declared_limits=settings.declared_limits,
        log_max_bytes=settings.agent_log_max_bytes,
        log_retention=settings.agent_log_retention,
        limits=settings.limits,
        standby=settings.standby,
        budget_per_day=settings.budget_per_day,
        node=(settings.node, settings.node_timeout),
    )
    run = serve(orchestrator, settings, access_log=args.access_log)
    tune_gc()
    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(run)
        else:
            uvloop.run(run)
    except (SocketInUse, DatabaseError) as exc:
        print(f"hived: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
