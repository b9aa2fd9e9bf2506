"""Statements of a cluster of nodes on one PostgreSQL (hived.nodes): node rows and heartbeats, and
the fenced claim of tasks from the shared queue. Times come from the database's clock (`now()`),
so the nodes' own clocks never decide who is lost."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Connection

from hived.model.nodes import free_slot
from hived.store.models import AgentRow, NodeRow, RunRow, TaskRow
from hived.store.workflows import ACTIVE_RUN

nodes = NodeRow.__table__
agents = AgentRow.__table__
tasks = TaskRow.__table__
runs = RunRow.__table__

IN_FLIGHT = ["assigned", "running", "waiting_input"]


def join(conn: Connection, name: str, host: str, pid: int, address: str | None) -> dict[str, Any]:
    """Register this node (its name's advisory lock is held already): its row is (re)set active,
    keeping its slot, or a free slot is taken. Returns the row."""
    conn.execute(text("LOCK TABLE nodes IN SHARE ROW EXCLUSIVE MODE"))  # two joins pick two slots
    row = conn.execute(select(nodes).where(nodes.c.name == name)).mappings().first()
    values = {"status": "active", "host": host, "pid": pid, "address": address, "lost_at": None}
    if row is None:
        slot = free_slot({r for (r,) in conn.execute(select(nodes.c.slot))})
        if slot is None:
            raise ValueError("the cluster has 64 nodes already; `hivectl node forget` one first")
        conn.execute(
            text(
                "INSERT INTO nodes (name, slot, status, host, pid, address, started_at, heartbeat_at) "
                "VALUES (:name, :slot, 'active', :host, :pid, :address, now(), now())"
            ),
            {"name": name, "slot": slot, "host": host, "pid": pid, "address": address},
        )
    else:
        conn.execute(
            update(nodes)
            .where(nodes.c.name == name)
            .values(**values, started_at=text("now()"), heartbeat_at=text("now()"))
        )
    return dict(conn.execute(select(nodes).where(nodes.c.name == name)).mappings().one())


def heartbeat(conn: Connection, name: str) -> tuple[str | None, int]:
    """Beat; returns the node's status (`lost` when another node moved its work meanwhile) and how
    many other nodes are up."""
    status = conn.execute(select(nodes.c.status).where(nodes.c.name == name)).scalar()
    if status in ("active", "draining"):
        conn.execute(update(nodes).where(nodes.c.name == name).values(heartbeat_at=text("now()")))
    up = select(func.count()).where(nodes.c.name != name, nodes.c.status.in_(["active", "draining"]))
    return status, int(conn.execute(up).scalar() or 0)


def set_status(conn: Connection, name: str, status: str, only_from: Sequence[str] | None = None) -> int:
    where = nodes.c.name == name
    if only_from is not None:
        where = where & nodes.c.status.in_(list(only_from))
    return int(conn.execute(update(nodes).where(where).values(status=status)).rowcount or 0)


def mark_lost(conn: Connection, me: str, timeout: float) -> list[str]:
    """Nodes silent for `timeout` seconds become `lost`; each is claimed by exactly one node (the one
    whose update changed its row), which then moves its work. Returns the names this node claimed."""
    rows = conn.execute(
        text(
            "UPDATE nodes SET status = 'lost', lost_at = now() WHERE status IN ('active', 'draining') "
            "AND name <> :me AND heartbeat_at < now() - make_interval(secs => :timeout) RETURNING name"
        ),
        {"me": me, "timeout": timeout},
    )
    return [r[0] for r in rows]


def all_nodes(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(nodes).order_by(nodes.c.name)).mappings()]


def placements(conn: Connection) -> dict[str, str | None]:
    """Every agent's id and the node it is placed on."""
    return {r.id: r.node for r in conn.execute(select(agents.c.id, agents.c.node))}


def place_unplaced(conn: Connection, node: str) -> None:
    """Agents and active workflow runs from before nodes existed belong to the first node that starts."""
    conn.execute(update(agents).where(agents.c.node.is_(None)).values(node=node))
    unplaced = runs.c.driver.is_(None) & runs.c.status.in_(ACTIVE_RUN)
    conn.execute(update(runs).where(unplaced).values(driver=node))


def take_runs(conn: Connection, lost: str, node: str) -> list[str]:
    """A lost node's active workflow runs: this node drives them now. Returns their ids."""
    rows = conn.execute(
        update(runs)
        .where(runs.c.driver == lost, runs.c.status.in_(ACTIVE_RUN))
        .values(driver=node)
        .returning(runs.c.id)
    )
    return [r[0] for r in rows]


def ended_of(conn: Connection, task_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Of these tasks, those that reached a final state (their status, agent, error, result)."""
    if not task_ids:
        return []
    rows = conn.execute(
        select(tasks.c.id, tasks.c.status, tasks.c.agent_id, tasks.c.error, tasks.c.result)
        .where(tasks.c.id.in_(list(task_ids)))
        .where(tasks.c.status.in_(["completed", "failed", "cancelled"]))
    )
    return [dict(r) for r in rows.mappings()]


def attempts_on(conn: Connection, node: str) -> list[dict[str, Any]]:
    """The tasks in flight on a lost node's agents, locked until this transaction ends."""
    rows = conn.execute(
        select(tasks)
        .where(tasks.c.status.in_(IN_FLIGHT))
        .where(tasks.c.agent_id.in_(select(agents.c.id).where(agents.c.node == node)))
        .with_for_update()
    )
    return [dict(r) for r in rows.mappings()]


CLAIM = text(
    "UPDATE tasks t SET status = 'assigned', agent_id = c.agent, lease = c.lease, attempts = c.number, "
    "next_attempt_at = NULL FROM (SELECT unnest(CAST(:ids AS text[])) AS id, "
    "unnest(CAST(:agents AS text[])) AS agent, unnest(CAST(:leases AS bigint[])) AS lease, "
    "unnest(CAST(:numbers AS int[])) AS number) c "
    "WHERE t.id = c.id AND t.attempts = c.number - 1 AND EXISTS (SELECT 1 FROM nodes "
    "WHERE name = :node AND status IN ('active', 'draining')) AND t.id IN (SELECT id FROM tasks "
    "WHERE id = ANY(CAST(:ids AS text[])) AND status IN ('pending', 'retrying', 'scheduled') "
    "FOR UPDATE SKIP LOCKED) RETURNING t.id"
)


def claim(conn: Connection, node: str, rows: list[dict[str, Any]]) -> set[str]:
    """Take tasks for this node's agents in one statement: only those still queued with the attempt
    count this node knew (fenced), skipping rows another node holds locked, and none while this node
    is marked lost (it has not heard yet). Returns the ids won."""
    if not rows:
        return set()
    won = conn.execute(
        CLAIM,
        {
            "ids": [r["task_id"] for r in rows],
            "agents": [r["agent_id"] for r in rows],
            "leases": [r["lease"] for r in rows],
            "numbers": [r["number"] for r in rows],
            "node": node,
        },
    )
    return {r[0] for r in won}


def current_leases(conn: Connection, task_ids: Sequence[str]) -> dict[str, int]:
    """The leases of these tasks' attempts still in flight, rows locked for this transaction: an end
    is written only for an attempt that is still the task's current one."""
    rows = conn.execute(
        select(tasks.c.id, tasks.c.lease)
        .where(tasks.c.id.in_(list(task_ids)))
        .where(tasks.c.status.in_(IN_FLIGHT))
        .with_for_update()
    )
    return {r.id: r.lease for r in rows}


SHARED_PAGES = 20  # pages of queued rows one look reads at most, past the ones this node holds
SHARED_PAGE_MOST = 5000  # rows in a page (each page twice the one before)


def shared_work(conn: Connection, held: Callable[[str], bool], most: int) -> list[dict[str, Any]]:
    """Queued tasks this node does not hold, for its idle agents: the highest priority first and,
    within it, the newest first (a node serves its own queue oldest first, so that two nodes rarely
    reach for the same rows). Retries and delayed tasks whose time has come are included: the node
    that held their timer may be gone. Read in pages past the rows this node holds (a pause can hold
    thousands here), each twice the one before, up to SHARED_PAGES pages."""
    found: list[dict[str, Any]] = []
    page, after = max(4 * most, 100), None
    for _ in range(SHARED_PAGES):
        below = "" if after is None else "AND (priority, seq) < (:priority, :seq) "
        rows = (
            conn.execute(
                text(
                    "SELECT * FROM tasks WHERE (status = 'pending' OR (status = 'retrying' AND "
                    "next_attempt_at <= now()) OR (status = 'scheduled' AND not_before <= now())) "
                    f"{below}ORDER BY priority DESC, seq DESC LIMIT :page"
                ),
                {"page": page, **(after or {})},
            )
            .mappings()
            .all()
        )
        found += [dict(r) for r in rows if not held(r["id"])]
        if len(found) >= most or len(rows) < page:
            break
        after = {"priority": rows[-1]["priority"], "seq": rows[-1]["seq"]}
        page = min(2 * page, SHARED_PAGE_MOST)
    return found[:most]


def db_now(conn: Connection) -> Any:
    return conn.execute(text("SELECT now()")).scalar()
