"""The gate of the TCP listener (the Unix socket has its file permissions instead): Host and Origin
checked against DNS rebinding and cross-site requests, then `Authorization: Bearer` tokens and their
scopes; an agent token acts only as its own agent."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from hived.auth.scopes import AGENT_PATH, RUN_CONTEXT_PATH, TASK_PATH, Scope, allows
from hived.auth.tokens import TokenInfo, Tokens

Send = Callable[[dict[str, Any]], Any]


async def refuse(send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class TokenAuth:
    def __init__(
        self,
        app: Any,
        tokens: Tokens,
        agent_of: Callable[[str], str | None],
        holder_of: Callable[[str], str | None],
        runs_of: Callable[[str], set[str]],
        allowed_hosts: set[str],
        allowed_origins: set[str],
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.agent_of = agent_of  # agent name or id -> agent name (None: unknown)
        self.holder_of = holder_of  # task id -> name of the agent holding its attempt
        self.runs_of = runs_of  # agent name -> ids of the runs whose tasks it holds
        self.allowed_hosts = allowed_hosts
        self.allowed_origins = allowed_origins

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "").rsplit(":", 1)[0].strip("[]").lower()
        if self.allowed_hosts and host not in self.allowed_hosts:
            await refuse(send, 403, f"Host {host!r} is not one this hived answers to (allowed_hosts)")
            return
        origin = headers.get("origin")
        if origin is not None and origin not in self.allowed_origins:
            await refuse(send, 403, f"cross-site request from Origin {origin!r} refused (allowed_origins)")
            return
        kind, _, token = headers.get("authorization", "").partition(" ")
        info = self.tokens.check(token.strip()) if kind.lower() == "bearer" else None
        if info is None:
            await refuse(
                send,
                401,
                "a valid token is needed: Authorization: Bearer <token>",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        method, path = scope["method"], scope["path"]
        if not allows(info.scope, method, path):
            await refuse(send, 403, f"a token of scope {info.scope} cannot {method} {path}")
            return
        if info.scope == Scope.AGENT and (why := self._not_its_own(info, path)):
            await refuse(send, 403, why)
            return
        scope.setdefault("state", {})["token"] = info
        await self.app(scope, receive, send)

    def _not_its_own(self, info: TokenInfo, path: str) -> str | None:
        if match := AGENT_PATH.match(path):
            if self.agent_of(match.group(1)) != info.agent:
                return f"this token acts only as agent {info.agent!r}"
        elif (match := TASK_PATH.match(path)) and self.holder_of(match.group(1)) != info.agent:
            return f"task {match.group(1)} is not held by agent {info.agent!r}"
        elif (match := RUN_CONTEXT_PATH.match(path)) and match.group(1) not in self.runs_of(info.agent or ""):
            return f"agent {info.agent!r} holds no task of run {match.group(1)} (give the full run id)"
        return None
