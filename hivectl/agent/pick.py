"""Which handler an agent runs: `exec` (one process per task) or `python` (a function in the agent),
from the `handler:` of its spec."""

from __future__ import annotations

from typing import Any

from hivectl.agent.exec_handler import ExecHandler
from hivectl.agent.handlers import Handler
from hivectl.agent.python_handler import PythonHandler


def make_handler(spec: dict[str, Any], workdir: str, env: dict[str, str]) -> Handler:
    """The handler for an agent's `handler:` spec (`{"exec": [...]}` or `{"python": "mod:fn"}`).
    Raises (ImportError, AttributeError, TypeError, ValueError) when it cannot be used."""
    if spec.get("exec"):
        return ExecHandler([str(arg) for arg in spec["exec"]], workdir, env)
    if spec.get("python"):
        return PythonHandler(str(spec["python"]), workdir, env.get("PYTHONPATH", ""))
    raise ValueError("the handler needs exec: [argv...] or python: module:function")

