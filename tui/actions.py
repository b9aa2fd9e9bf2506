"""The dashboard's keys that act on hived: restart, drain and remove an agent; cancel a task or a
run; approve a run's waiting gate; pause and resume the queue. Each asks first (`ConfirmScreen`) and
says how it went. `HiveApp` is built on this class: the panes and the feed are its own."""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from typing import Any

from textual import work
from textual.app import App
from textual.widgets import DataTable, TabbedContent

from hivectl.client import AsyncClient, ClientError
from tui.screens import ConfirmScreen
from tui.state import Fleet


class Actions(App[None]):
    client: AsyncClient
    fleet: Fleet

    @property
    def pane(self) -> str:
        return self.query_one(TabbedContent).active

    def selected(self, table_id: str) -> str | None:
        table = self.query_one(f"#{table_id}", DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def selected_agent(self) -> dict[str, Any] | None:
        agent_id = self.selected("agents-table")
        return self.fleet.agents.get(agent_id) if agent_id else None

    # --- agents -----------------------------------------------------------------------------------

    def action_restart(self) -> None:
        if self.pane == "agents" and (agent := self.selected_agent()):
            self.confirm_then(
                f"Restart agent {agent['name']}? (it drains first)",
                lambda: self.client.restart_agent(agent["id"]),
                f"agent {agent['name']} restarted",
            )

    def action_drain(self) -> None:
        if self.pane == "agents" and (agent := self.selected_agent()):
            self.confirm_then(
                f"Drain agent {agent['name']} (finish its tasks) and remove it?",
                lambda: self.client.delete_agent(agent["id"], drain=True),
                f"agent {agent['name']} drained and removed",
            )

    def action_remove(self) -> None:
        if self.pane == "agents" and (agent := self.selected_agent()):
            self.confirm_then(
                f"Remove agent {agent['name']} now? Its running tasks are retried elsewhere.",
                lambda: self.client.delete_agent(agent["id"], drain=False),
                f"agent {agent['name']} removed",
            )

    # --- tasks and runs ---------------------------------------------------------------------------

    def action_cancel(self) -> None:
        if self.pane == "queue" and (task_id := self.selected("tasks-table")):
            self.confirm_then(
                f"Cancel task {task_id[:8]}?",
                lambda: self.client.cancel_task(task_id),
                f"task {task_id[:8]} cancelled",
            )
        elif self.pane == "workflows" and (run_id := self.selected("runs-table")):
            self.confirm_then(
                f"Cancel run {run_id[:8]}?",
                lambda: self.client.cancel_run(run_id),
                f"run {run_id[:8]} cancelled",
            )

    def action_approve(self) -> None:
        if self.pane != "workflows" or not (run_id := self.selected("runs-table")):
            return
        run = self.fleet.runs.get(run_id, {})
        waiting = [s["id"] for s in run.get("steps", []) if s.get("status") == "waiting"]
        if not waiting:
            self.notify(f"run {run_id[:8]} has no gate waiting for approval", severity="warning")
            return
        step = waiting[0]
        self.confirm_then(
            f"Approve step {step} of run {run_id[:8]}?",
            lambda: self.client.approve_step(run_id, step, by=getpass.getuser()),
            f"step {step} approved",
        )

    # --- the queue --------------------------------------------------------------------------------

    def action_pause(self) -> None:
        """`hivectl queue pause` with no filter: every task is held (they stay pending)."""
        self.confirm_then(
            "Pause the queue? No task starts (queued and new ones stay pending) until it is resumed.",
            lambda: self.client.pause_queue({"requires": []}),
            "queue paused: every task is held",
        )

    def action_resume(self) -> None:
        """`hivectl queue resume` with no filter: lifts the pause of every task."""
        if not any(is_whole(p) for p in self.fleet.paused):
            others = len(self.fleet.paused)
            more = f" ({others} narrower pause(s): hivectl queue resume --all)" if others else ""
            self.notify(f"the queue is not paused as a whole{more}", severity="warning")
            return
        self.confirm_then(
            "Resume the queue? Held tasks go back to the queue in their order.",
            lambda: self.client.resume_queue({"requires": []}),
            "queue resumed",
        )

    # --- asking first -----------------------------------------------------------------------------

    def confirm_then(self, question: str, action: Callable[[], Awaitable[Any]], done: str) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.act(action, done)

        self.push_screen(ConfirmScreen(question), answered)

    @work(group="actions")
    async def act(self, action: Callable[[], Awaitable[Any]], done: str) -> None:
        try:
            await action()
        except ClientError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        self.notify(done)
        await self.acted()

    async def acted(self) -> None:
        """After an action: read again what it changed that no event says (the app's refresh)."""


def is_whole(pause: dict[str, Any]) -> bool:
    """The pause of every task (`hivectl queue pause` with no filter)."""
    return not (pause.get("type") or pause.get("requires") or pause.get("workflow"))
