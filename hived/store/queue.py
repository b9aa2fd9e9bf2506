"""Statements of the queue controls: the queue's pauses and the agents' cordons."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from hived.store.models import AgentRow, PauseRow

pauses = PauseRow.__table__
agents = AgentRow.__table__


def load_pauses(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(pauses).order_by(pauses.c.created_at)).mappings()]


def add_pause(conn: Connection, row: dict[str, Any]) -> bool:
    """Store a pause; False if one with the same key is stored already (nothing changes)."""
    if conn.execute(select(pauses.c.key).where(pauses.c.key == row["key"])).first() is not None:
        return False
    conn.execute(insert(pauses), [row])
    return True


def delete_pauses(conn: Connection, keys: list[str] | None) -> int:
    """Remove the pauses with these keys (None: every pause); returns how many were removed."""
    statement = delete(pauses) if keys is None else delete(pauses).where(pauses.c.key.in_(keys))
    return int(conn.execute(statement).rowcount or 0)


def cordoned_agents(conn: Connection) -> list[str]:
    return list(conn.execute(select(agents.c.id).where(agents.c.cordoned.is_(True))).scalars())


def set_cordoned(conn: Connection, agent_id: str, cordoned: bool) -> None:
    conn.execute(update(agents).where(agents.c.id == agent_id).values(cordoned=cordoned))
