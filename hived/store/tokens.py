"""API token statements. Each takes an open connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from hived.store.models import TokenRow

tokens = TokenRow.__table__


def all_tokens(conn: Connection) -> list[dict[str, Any]]:
    """Every token, revoked ones included, oldest first."""
    return [dict(r) for r in conn.execute(select(tokens).order_by(tokens.c.created_at)).mappings()]


def insert_token(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(tokens), [row])


def revoke_token(conn: Connection, token_id: str, now: datetime) -> None:
    conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked_at=now))
