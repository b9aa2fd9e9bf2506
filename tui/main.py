"""`hive-tui`: the dashboard's command line, and the factory that gives the app its client."""

from __future__ import annotations

import argparse
import sys

from hivectl.client import AsyncClient
from hivectl.endpoint import Endpoint
from tui.app import HiveApp


def create_app(endpoint: Endpoint, refresh: float = 5.0) -> HiveApp:
    """The dashboard on its own client of `endpoint`."""
    return HiveApp(AsyncClient(endpoint, timeout=10.0), refresh=refresh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hive-tui", description="A live dashboard of the hive.")
    parser.add_argument("--socket", help="hived's Unix socket (env HIVE_SOCKET)")
    parser.add_argument("--url", help="hived over TCP, http://host:port (env HIVE_URL)")
    parser.add_argument("--token", help="API token for --url (env HIVE_TOKEN)")
    parser.add_argument("--refresh", type=float, default=5.0, help="seconds between re-reads of RSS/CPU")
    args = parser.parse_args(argv)
    endpoint = Endpoint.from_env(socket=args.socket, url=args.url, token=args.token)
    create_app(endpoint, refresh=args.refresh).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
