"""Who is on the other end of the Unix socket: the kernel's SO_PEERCRED (pid, uid, gid) of each
connection, put in the request's state; mutating requests are logged with it (hived.auth.audit),
and only hived's own user, root and members of `socket_group` get through (the file mode already
keeps others out; this holds even if the mode were loosened by hand)."""

from __future__ import annotations

import grp
import logging
import os
import pwd
import socket
import struct
from collections.abc import Iterable
from typing import Any, NamedTuple

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hived.auth.audit import AuditLog
from hived.auth.middleware import refuse

log = logging.getLogger("hived.api")
CRED = struct.Struct("3i")


class Peer(NamedTuple):
    pid: int
    uid: int
    gid: int


def peer_of(sock: socket.socket | None) -> Peer | None:
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    try:
        return Peer(*CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, CRED.size)))
    except OSError:
        return None


class PeerCredProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the peer's credentials in `scope["state"]["peer"]`."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.peer = peer_of(transport.get_extra_info("socket"))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["state"]["peer"] = self.peer


def allowed_uids(group: str | None) -> tuple[set[int], int | None]:
    """hived's user and root; with `socket_group`, its gid (members are checked per request)."""
    uids = {os.getuid(), 0}
    if not group:
        return uids, None
    entry = grp.getgrnam(group)
    for name in entry.gr_mem:
        try:
            uids.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            continue
    return uids, entry.gr_gid


class PeerCheck:
    def __init__(self, app: Any, uids: Iterable[int], gid: int | None, audit: AuditLog | None = None) -> None:
        self.app = app
        self.uids = set(uids)
        self.gid = gid
        self.audit = audit or AuditLog()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        peer = scope.get("state", {}).get("peer") if scope["type"] == "http" else None
        if peer is not None:
            if peer.uid not in self.uids and (self.gid is None or peer.gid != self.gid):
                log.warning(
                    "refused %s %s from uid %d (pid %d)", scope["method"], scope["path"], peer.uid, peer.pid
                )
                await refuse(send, 403, f"uid {peer.uid} may not use this socket (socket_group)")
                return
            if scope["method"] not in ("GET", "HEAD"):
                self.audit.changed(scope["method"], scope["path"], peer.uid, peer.pid)
        await self.app(scope, receive, send)
