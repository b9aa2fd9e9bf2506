"""The limits slice (flow control): `kind: Limit` definitions (a token bucket `rate`, a per-key
`concurrency`, a strategy for a full key), the gate the dispatcher asks before it assigns a task
that names limits (gate.py), its books of a limit and of a task (state.py), the pure rules behind
them (rules.py), the service the task service and the routes call, and the routes."""
