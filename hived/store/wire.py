"""LISTEN/NOTIFY between the nodes of a cluster: one asyncpg connection of its own per node, which
listens on Hive's channels and sends the notifications. A notification can be lost (while the
connection is down, say); nothing depends on one arriving: each has a slow poll behind it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from hived.store.engines import KEEPALIVE

log = logging.getLogger("hived.nodes")

CHANNEL = "hive_cluster"
MAX_PAYLOAD = 7900  # PostgreSQL's limit is 8000 bytes


class Wire:
    def __init__(self, url: str, node: str) -> None:
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.node = node
        self.handlers: dict[str, Callable[[str, dict[str, Any]], None]] = {}
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.on_reconnect: list[Callable[[], None]] = []  # what a lost notification may have said
        self._sending = asyncio.Lock()  # one statement at a time on the connection (else it is refused)

    def on(self, kind: str, handler: Callable[[str, dict[str, Any]], None]) -> None:
        """`handler(sender, body)` for every notification of `kind` from another node."""
        self.handlers[kind] = handler

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep(), name="nodes-wire")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)

    async def send(self, kind: str, body: dict[str, Any]) -> bool:
        """Tell the other nodes; False (and a debug line) when it was not sent: the connection is
        down, or the notification is too large."""
        payload = json.dumps({"k": kind, "n": self.node, "b": body}, separators=(",", ":"))
        if len(payload) > MAX_PAYLOAD or self._conn is None or self._conn.is_closed():
            log.debug("nodes: %s not sent (%d bytes, connection %s)", kind, len(payload), self._conn)
            return False
        try:
            async with self._sending:  # two sends at once: the second would fail, not wait
                await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
        except Exception as exc:  # the poll behind it covers it
            log.debug("nodes: %s not sent: %s", kind, exc)
            return False
        return True

    def _received(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            note = json.loads(payload)
            if note["n"] == self.node:
                return
            handler = self.handlers.get(note["k"])
        except (ValueError, KeyError, TypeError):
            log.warning("nodes: a notification that is not Hive's: %.80s", payload)
            return
        if handler is not None:
            handler(note["n"], note.get("b") or {})

    async def _keep(self) -> None:
        import asyncpg

        first = True
        while True:
            try:
                self._conn = await asyncpg.connect(self.dsn, timeout=10, server_settings=dict(KEEPALIVE))
                await self._conn.add_listener(CHANNEL, self._received)
                self.connected.set()
                if not first:
                    for reconnected in self.on_reconnect:
                        reconnected()
                first = False
                while not self._conn.is_closed():
                    await asyncio.sleep(2.0)
                    async with self._sending:
                        await asyncio.wait_for(self._conn.fetchval("SELECT 1"), 10)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("nodes: the notification connection broke (%s); connecting again", exc)
            self.connected.clear()
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.terminate()
                self._conn = None
            await asyncio.sleep(1.0)
