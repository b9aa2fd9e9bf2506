"""Statements of limits held cluster-wide (hived.nodes.limits; PostgreSQL only): the limits a claim
takes, locked for its transaction (two nodes' claims of one limit take turns), the units held of
their keys, the holds written with the claim and deleted with the attempt's end, and the sweep of
holds whose attempt is over (a cancel, a lost node)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

LOCK = text(
    "SELECT name, definition, tokens, tokens_at, version, closed_until FROM limits "
    "WHERE name = ANY(CAST(:names AS text[])) ORDER BY name FOR UPDATE"
)
HELD = text(
    "SELECT name, key, node = :me AS mine, sum(units) AS units FROM limit_holds "
    "WHERE name = ANY(CAST(:names AS text[])) GROUP BY name, key, node = :me"
)
HELD_ELSEWHERE = text(
    "SELECT name, key, sum(units) AS units FROM limit_holds WHERE node <> :me GROUP BY name, key"
)
SAVE_LEVEL = text(
    "UPDATE limits SET tokens = :tokens, tokens_at = :at, version = version + 1 WHERE name = :name"
)
DROP = text("DELETE FROM limit_holds WHERE task_id = ANY(CAST(:ids AS text[]))")
HOLD = text(
    "INSERT INTO limit_holds (task_id, name, key, units, lease, node) "
    "VALUES (:task_id, :name, :key, :units, :lease, :node)"
)
FREE = text(
    "DELETE FROM limit_holds h USING (SELECT unnest(CAST(:ids AS text[])) AS id, "
    "unnest(CAST(:leases AS bigint[])) AS lease) e WHERE h.task_id = e.id AND h.lease = e.lease"
)
SWEEP = text(
    "DELETE FROM limit_holds h WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = h.task_id "
    "AND t.lease = h.lease AND t.status IN ('assigned', 'running', 'waiting_input'))"
)

KEY_HOLDERS = text(
    "SELECT h.task_id, h.units, t.seq FROM limit_holds h JOIN tasks t ON t.id = h.task_id "
    "AND t.lease = h.lease AND t.status IN ('assigned', 'running', 'waiting_input') "
    "WHERE h.name = :name AND h.key = :key"
)
KEY_QUEUED = text(
    "SELECT id, seq, options -> 'limits' AS limits FROM tasks WHERE status = 'pending' AND seq < :seq "
    "AND options -> 'limits' @> CAST(:want AS jsonb)"
)


def lock_limits(conn: Connection, names: Sequence[str]) -> list[dict[str, Any]]:
    """These limits' rows, locked until the transaction ends (in name order: no deadlock)."""
    return [dict(r) for r in conn.execute(LOCK, {"names": list(names)}).mappings()]


def held(conn: Connection, names: Sequence[str], me: str) -> list[dict[str, Any]]:
    """Units held of each key of these limits: rows of {name, key, mine, units}."""
    return [dict(r) for r in conn.execute(HELD, {"names": list(names), "me": me}).mappings()]


def held_elsewhere(conn: Connection, me: str) -> dict[tuple[str, str], int]:
    """Units the other nodes' tasks hold, per (limit, key)."""
    return {(r.name, r.key): int(r.units) for r in conn.execute(HELD_ELSEWHERE, {"me": me})}


def save_levels(conn: Connection, levels: Sequence[dict[str, Any]]) -> None:
    """Buckets' new levels: rows of {name, tokens, at} (the version counts one more change)."""
    if levels:
        conn.execute(SAVE_LEVEL, list(levels))


def hold(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Holds of attempts just claimed: rows of {task_id, name, key, units, lease, node} (a hold an
    earlier attempt of the task left is dropped first)."""
    if rows:
        conn.execute(DROP, {"ids": sorted({r["task_id"] for r in rows})})
        conn.execute(HOLD, list(rows))


def free(conn: Connection, ended: Sequence[tuple[str, int]]) -> None:
    """The holds of these attempts (task id, lease), which end in this transaction."""
    if ended:
        conn.execute(FREE, {"ids": [t for t, _ in ended], "leases": [lease for _, lease in ended]})


def sweep(conn: Connection) -> int:
    """Holds whose attempt is over (cancelled, moved off a lost node, ended without its delete)."""
    return int(conn.execute(SWEEP).rowcount or 0)


def of_key(conn: Connection, name: str, key: str | None, seq: int) -> tuple[list[Any], list[Any]]:
    """A key's tasks for the strategies (hived.limits.rules.cluster_wide): its holders on every node
    (attempts still current), rows of (task_id, units, seq); and the pending tasks older than `seq`
    that name it (a scan of the queued rows), rows of (id, seq, limits)."""
    holders = list(conn.execute(KEY_HOLDERS, {"name": name, "key": key or ""}))
    want = json.dumps([{"name": name, "key": key}])
    return holders, list(conn.execute(KEY_QUEUED, {"seq": seq, "want": want}))
