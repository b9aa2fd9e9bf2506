"""hive-agent: the worker process that runs an agent's handler. For handlers: `Throttled`
(`from hivectl.agent import Throttled`), the back-pressure report of a python handler."""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "Throttled":  # imported on first use: the agent's own start-up does not need it
        from hivectl.agent.handlers import Throttled

        return Throttled
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Throttled"]
