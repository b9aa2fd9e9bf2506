"""Agent and incarnation statements."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from hived.store.models import AgentRow, IncarnationRow

agents = AgentRow.__table__
incarnations = IncarnationRow.__table__


def insert_agent(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(agents), [row])


def update_agent(conn: Connection, agent_id: str, **values: Any) -> None:
    conn.execute(update(agents).where(agents.c.id == agent_id).values(**values))


def flush_live(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Batch update of the fast-changing fields (status, heartbeat, resources, counters)."""
    if not rows:
        return
    conn.execute(
        update(agents)
        .where(agents.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            status_reason=bindparam("b_reason"),
            last_heartbeat=bindparam("b_hb"),
            rss_bytes=bindparam("b_rss"),
            cpu_percent=bindparam("b_cpu"),
            tasks_done=bindparam("b_done"),
            tasks_failed=bindparam("b_failed"),
            updated_at=bindparam("b_now"),
        ),
        rows,
    )


def delete_agent(conn: Connection, agent_id: str) -> None:
    conn.execute(delete(incarnations).where(incarnations.c.agent_id == agent_id))
    conn.execute(delete(agents).where(agents.c.id == agent_id))


def start_incarnation(
    conn: Connection, agent_id: str, number: int, pid: int | None, hostname: str | None, now: datetime
) -> None:
    conn.execute(
        insert(incarnations),
        [{"agent_id": agent_id, "number": number, "pid": pid, "hostname": hostname, "started_at": now}],
    )


def set_incarnation_pid(conn: Connection, agent_id: str, number: int, pid: int) -> None:
    conn.execute(
        update(incarnations)
        .where(and_(incarnations.c.agent_id == agent_id, incarnations.c.number == number))
        .values(pid=pid)
    )


def end_incarnation(
    conn: Connection,
    agent_id: str,
    number: int,
    now: datetime,
    exit_code: int | None,
    signal: int | None,
    reason: str,
) -> None:
    conn.execute(
        update(incarnations)
        .where(
            and_(
                incarnations.c.agent_id == agent_id,
                incarnations.c.number == number,
                incarnations.c.ended_at.is_(None),
            )
        )
        .values(ended_at=now, exit_code=exit_code, signal=signal, reason=reason)
    )


def all_agents(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in (conn.execute(select(agents).order_by(agents.c.name))).mappings()]


def get_incarnations(conn: Connection, agent_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(incarnations).where(incarnations.c.agent_id == agent_id).order_by(incarnations.c.number)
    )
    return [dict(r) for r in rows.mappings()]
