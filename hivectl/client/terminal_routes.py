"""The interactive-task routes of hived (`tty: true` handlers) as `Call` descriptions, beside
hivectl.client.routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hivectl.client.routes import Call, _model, _ref

if TYPE_CHECKING:
    from hived.model.schemas import Task
    from hived.model.terminals import Terminal


class TerminalRoutes:
    @staticmethod
    def send_input(ref: str, text: str) -> Call[Task]:
        """Type `text`, then Enter, into the task's terminal."""
        return Call("POST", f"/tasks/{_ref(ref)}/input", _model("Task"), body={"text": text})

    @staticmethod
    def terminal(ref: str) -> Call[Terminal]:
        """Where the task's tmux session is (host, socket, session)."""
        return Call("GET", f"/tasks/{_ref(ref)}/terminal", _model("Terminal"))
