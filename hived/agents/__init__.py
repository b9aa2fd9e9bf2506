"""The agent slice: supervision of agent processes (spawn, adopt after a hived restart, restart with
backoff, drain, recycle), heartbeats and health, the agent protocol (register, heartbeat, work), the
pure rules (restart policy, circuit breaker), the service the routes call, and the agent routes."""
