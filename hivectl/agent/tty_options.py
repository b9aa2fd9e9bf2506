"""The options of a `tty: true` exec handler, and where an attempt's terminal events go (see
hivectl/agent/tty.py)."""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Where the runtime hears about an attempt's terminal: (event, details), event one of
# "started" (details: socket, session), "waiting", "running".
TerminalSink = Callable[[str, dict[str, Any]], None]
CURRENT: contextvars.ContextVar[TerminalSink | None] = contextvars.ContextVar("hive_terminal", default=None)


@dataclass(frozen=True)
class TtyOptions:
    prompt: re.Pattern[str] | None = None
    input_timeout: float = 30.0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> TtyOptions | None:
        """The options of a handler spec, None when it is not `tty: true`."""
        if not spec.get("tty"):
            return None
        pattern = spec.get("prompt_pattern")
        timeout = spec.get("input_timeout")
        return cls(re.compile(pattern) if pattern else None, float(timeout) if timeout else 30.0)
