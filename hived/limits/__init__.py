"""The limits slice (flow control): `kind: Limit` definitions (a token bucket `rate`, a per-key
`concurrency`), the gate the dispatcher asks before it assigns a task that names limits (gate.py),
the pure rules behind it (rules.py), the service the task service and the routes call, and the
routes."""
