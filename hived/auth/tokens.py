"""API tokens: made with `secrets`, stored as SHA-256 only, checked in constant time, revocable.
A token is shown once, when it is created; `hivectl token list` shows ids, scopes and names."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hived import redact
from hived.auth.scopes import Scope
from hived.errors import Conflict, Invalid, NotFound
from hived.store import tokens as store
from hived.store.db import Database

PREFIX = "hive_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    id: str
    scope: Scope
    agent: str | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None
    digest: str

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": str(self.scope),
            "agent": self.agent,
            "name": self.name,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        row["id"],
        Scope(row["scope"]),
        row["agent"],
        row["name"],
        row["created_at"],
        row["revoked_at"],
        row["digest"],
    )


class Tokens:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._valid: dict[str, TokenInfo] = {}  # digest -> token, revoked ones left out

    async def load(self) -> None:
        rows = await self.db.read(store.all_tokens)
        self._valid = {r["digest"]: _info(r) for r in rows if r["revoked_at"] is None}

    def check(self, token: str) -> TokenInfo | None:
        """The token's record, or None (unknown or revoked). The compare is constant-time."""
        if not token.startswith(PREFIX):
            return None
        wanted = digest(token)
        found = self._valid.get(wanted)
        if found is None or not hmac.compare_digest(found.digest, wanted):
            return None
        return found

    async def create(self, scope: str, agent: str | None, name: str | None) -> tuple[TokenInfo, str]:
        try:
            held = Scope(scope)
        except ValueError:
            raise Invalid(f"scope: {scope!r} is not one of admin, operator, read, agent") from None
        if (held == Scope.AGENT) != bool(agent):
            raise Invalid("agent: an agent token needs --agent NAME, and only an agent token takes one")
        secret = PREFIX + secrets.token_urlsafe(32)
        redact.remember(secret)
        row = {
            "id": str(uuid.uuid4()),
            "name": name,
            "scope": str(held),
            "agent": agent,
            "digest": digest(secret),
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
        await self.db.write(lambda c: store.insert_token(c, row))
        info = _info(row)
        self._valid[info.digest] = info
        return info, secret

    async def list(self) -> list[TokenInfo]:
        rows = await self.db.read(store.all_tokens)
        return [_info(r) for r in rows]

    async def revoke(self, ref: str) -> TokenInfo:
        matches = [t for t in await self.list() if t.id == ref or (len(ref) >= 4 and t.id.startswith(ref))]
        if not matches:
            raise NotFound(f"token {ref!r} not found")
        if len(matches) > 1:
            raise Conflict(f"token id prefix {ref!r} is ambiguous")
        token = matches[0]
        now = datetime.now(UTC)
        await self.db.write(lambda c: store.revoke_token(c, token.id, now))
        self._valid.pop(token.digest, None)
        return TokenInfo(**{**token.__dict__, "revoked_at": token.revoked_at or now})
