"""Nodes: several hived on one PostgreSQL, each supervising its own host's agents (DESIGN, "Nodes").

- membership.py: a node's row, its heartbeats, and the loss of a silent node (its work is moved);
- sharing.py: the queue the nodes share (fenced claims, idle agents looking for work, moved work);
- hived.store.wire: LISTEN/NOTIFY between the nodes (wake-ups, cancels);
- service.py and routes.py: `hivectl node list|show|drain`.
"""
