"""`hive-tui` (and `hivectl tui`): a live dashboard of the hive in the manner of k9s and `pm2 monit`.

Changes arrive on hived's `/events` stream and are applied to `tui.state.Fleet`; a timer draws only
the rows that changed (in place, in batches), so hundreds of agents and thousands of tasks stay
cheap. RSS, CPU and heartbeat ages are re-read every few seconds. When hived goes away the header
says so and the app reconnects by itself, starting again from a fresh snapshot.

All I/O goes through the `AsyncClient` the app is given (`tui.main.create_app` builds one from an
endpoint); the app closes it when it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.console import Group
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Input, RichLog, Sparkline, Static, TabbedContent, TabPane

from hivectl.client import AsyncClient, ClientError
from tui import attempt_files, feed, terminal, views
from tui.actions import Actions
from tui.feed import as_dict
from tui.screens import (
    DetailScreen,
    HelpScreen,
    RunScreen,
    agent_detail,
    kv_table,
    limit_detail,
    task_detail,
)
from tui.state import Fleet

PANES = ("agents", "queue", "workflows", "events", "limits", "nodes")
TABLES = {
    "agents": "agents-table",
    "queue": "tasks-table",
    "workflows": "runs-table",
    "limits": "limits-table",
    "nodes": "nodes-table",
}
BACKLOG = 200  # events shown from before the app connected


class HiveApp(Actions):
    TITLE = "hive"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help"),
        Binding("slash", "filter", "filter"),
        Binding("1", "pane('agents')", "agents", show=False),
        Binding("2", "pane('queue')", "queue", show=False),
        Binding("3", "pane('workflows')", "workflows", show=False),
        Binding("4", "pane('events')", "events", show=False),
        Binding("5", "pane('limits')", "limits", show=False),
        Binding("6", "pane('nodes')", "nodes", show=False),
        Binding("enter", "details", "details", show=False),
        Binding("r", "restart", "restart"),
        Binding("d", "drain", "drain"),
        Binding("x", "remove", "remove"),
        Binding("c", "cancel", "cancel"),
        Binding("a", "approve", "approve"),
        Binding("l", "logs", "logs"),
        Binding("p", "pause", "pause"),
        Binding("u", "resume", "resume"),
        Binding("escape", "clear_filter", show=False),
    ]

    def __init__(self, client: AsyncClient, refresh: float = 5.0, flush: float = 0.1) -> None:
        super().__init__()
        self.client = client
        self.fleet = Fleet()
        self.refresh_every = refresh
        self.flush_every = flush
        self.connected = False
        self.filter = ""
        self.pending_events: list[dict[str, Any]] = []
        self.drawn: dict[str, dict[str, tuple[str, ...]]] = {}  # table id -> row key -> cells on screen

    # --- layout -----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(f"connecting to {self.client.endpoint.describe()} ...", id="conn")
        with TabbedContent(initial="agents"):
            with TabPane("1 Agents", id="agents"):
                yield DataTable(id="agents-table", cursor_type="row", zebra_stripes=True)
            with TabPane("2 Queue", id="queue"):
                yield Static("", id="depth")
                yield Static("queue depth (last minutes)", classes="spark-label")
                yield Sparkline([], id="depth-spark")
                yield Static("tasks ended per 2 s", classes="spark-label")
                yield Sparkline([], id="done-spark")
                yield DataTable(id="tasks-table", cursor_type="row", zebra_stripes=True)
            with TabPane("3 Workflows", id="workflows"):
                yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            with TabPane("4 Events", id="events"):
                yield RichLog(id="events-log", max_lines=2000, wrap=False)
            with TabPane("5 Limits", id="limits"):
                yield DataTable(id="limits-table", cursor_type="row", zebra_stripes=True)
            with TabPane("6 Nodes", id="nodes"):
                yield Static("", id="nodes-summary")
                yield DataTable(id="nodes-table", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="filter rows (enter to apply, esc to clear)", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        for table_id, columns in (
            ("agents-table", views.AGENT_COLUMNS),
            ("tasks-table", views.TASK_COLUMNS),
            ("runs-table", views.RUN_COLUMNS),
            ("limits-table", views.LIMIT_COLUMNS),
            ("nodes-table", views.NODE_COLUMNS),
        ):
            table = self.query_one(f"#{table_id}", DataTable)
            for column in columns:
                table.add_column(column.upper(), key=column)
        self.follow()
        self.set_interval(self.flush_every, self.flush)
        self.set_interval(2.0, self.tick)
        self.set_interval(self.refresh_every, self.refresh_snapshot)

    # --- the live feed ----------------------------------------------------------------------------

    @work(exclusive=True, group="feed")
    async def follow(self) -> None:
        delay = 0.5
        while True:
            try:
                self.load(await feed.snapshot(self.client))
                self.set_connected(True)
                delay = 0.5
                start = self.fleet.last_event_id
                # The last events before the snapshot are shown in the log (the snapshot has them).
                # A dropped stream is not resumed: a restarted hived needs a fresh snapshot.
                async for event in self.client.events(max(0, start - BACKLOG), reconnect=False):
                    if event.id > start:
                        self.fleet.apply(event.data)
                    self.pending_events.append(event.data)
            except (ClientError, OSError, ValueError) as exc:
                reason = type(exc).__name__
                self.set_connected(False, f"disconnected ({reason}), retrying in {delay:.0f}s")
            else:
                self.set_connected(False, "disconnected (stream ended), retrying")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def load(self, snapshot: dict[str, Any]) -> None:
        fleet = self.fleet
        fleet.last_event_id = int(snapshot["status"].get("last_event_id", 0))  # a restarted hived counts anew
        fleet.load_status(snapshot["status"])
        fleet.load_agents(snapshot["agents"])
        fleet.load_tasks(snapshot["tasks"])
        fleet.load_runs(snapshot["runs"])
        fleet.load_limits(snapshot["limits"])
        fleet.load_nodes(snapshot["nodes"])

    async def refresh_snapshot(self) -> None:
        """RSS, CPU, heartbeats, counts, limits, nodes, pauses, cordons and why tasks wait are not
        events: read them again now and then."""
        if not self.connected:
            return
        try:
            self.fleet.load_agents(await feed.agents(self.client))
            self.fleet.load_status(as_dict(await self.client.status()))
            self.fleet.load_limits(await feed.limits(self.client))
            self.fleet.load_nodes(await feed.nodes(self.client))
            self.fleet.load_queued(await feed.queued(self.client))
            active = [
                r for r in self.fleet.runs.values() if r.get("status") in ("pending", "running", "paused")
            ]
            for run in active[:50]:
                self.fleet.runs[run["id"]] = as_dict(await self.client.get_run(run["id"]))
                self.fleet.dirty.runs.add(run["id"])
        except (ClientError, OSError, ValueError):
            pass  # the feed notices and says so

    def set_connected(self, up: bool, message: str = "") -> None:
        self.connected = up
        if not self.query("#conn"):  # the app is closing: its widgets are gone already
            return
        conn = self.query_one("#conn", Static)
        conn.set_class(not up, "down")
        if up:
            conn.update(f"connected to {self.client.endpoint.describe()}")
        else:
            conn.update(message)

    # --- drawing: only what changed ---------------------------------------------------------------

    def flush(self) -> None:
        if not self.query("#agents-table"):  # the app is closing: its panes are gone already
            return
        agents = self.query_one("#agents-table", DataTable)
        dirty = self.fleet.take_dirty()
        now = views.now_utc()
        names = self.agent_names()
        for agent_id in dirty.removed_agents:
            self.remove_row(agents, agent_id)
        for agent_id in sorted(dirty.agents, key=lambda a: self.fleet.agents.get(a, {}).get("name", "")):
            agent = self.fleet.agents.get(agent_id)
            if agent is not None:
                self.put_row(agents, agent_id, views.agent_row(agent, now), views.AGENT_COLUMNS)
        tasks = self.query_one("#tasks-table", DataTable)
        for task_id in [t for t in self.fleet.tasks if t in dirty.tasks]:  # oldest first
            if task := self.fleet.tasks.get(task_id):
                self.put_row(tasks, task_id, views.task_row(task, names), views.TASK_COLUMNS)
        for task_id in [k.value for k in tasks.rows if k.value not in self.fleet.tasks]:
            self.remove_row(tasks, task_id or "")
        if dirty.tasks:
            terminal.waiting_first(tasks, self.fleet.tasks)
        runs = self.query_one("#runs-table", DataTable)
        for run_id in [r for r in self.fleet.runs if r in dirty.runs]:
            if run := self.fleet.runs.get(run_id):
                self.put_row(runs, run_id, views.run_row(run, now), views.RUN_COLUMNS)
        fleet = self.fleet
        self.draw_named("limits-table", dirty.limits, dirty.removed_limits, fleet.limits, views.limit_row)
        self.draw_named("nodes-table", dirty.nodes, dirty.removed_nodes, fleet.nodes, views.node_row)
        if dirty.agents or dirty.removed_agents:  # the agents by status, and those on no known node
            self.query_one("#nodes-summary", Static).update(views.nodes_summary(list(fleet.agents.values())))
        if dirty.queue:
            self.query_one("#depth", Static).update(
                views.depth_text(fleet.task_counts, fleet.queue_depth, fleet.depth_by_priority, fleet.paused)
            )
            self.query_one("#depth-spark", Sparkline).data = list(fleet.depth_history)
            self.query_one("#done-spark", Sparkline).data = list(fleet.done_history)
        if self.pending_events:
            log = self.query_one("#events-log", RichLog)
            for event in self.pending_events:
                if self.matches(views.event_line(event).plain):
                    log.write(views.event_line(event))
            self.pending_events.clear()

    def draw_named(
        self,
        table_id: str,
        changed: set[str],
        removed: set[str],
        items: dict[str, dict[str, Any]],
        row: Callable[[dict[str, Any], datetime], tuple[Any, ...]],
    ) -> None:
        """The rows of a pane of named objects (limits, nodes) that changed or went away."""
        table = self.query_one(f"#{table_id}", DataTable)
        now = views.now_utc()
        columns = tuple(str(key.value) for key in table.columns)
        for name in removed:
            self.remove_row(table, name)
        for name in sorted(changed):
            if item := items.get(name):
                self.put_row(table, name, row(item, now), columns)

    def put_row(
        self, table: DataTable[Any], key: str, cells: tuple[Any, ...], columns: tuple[str, ...]
    ) -> None:
        """Add the row, or update its cells in place (no redraw of the table)."""
        if not self.matches(" ".join(str(c) for c in cells)):
            self.remove_row(table, key)
            return
        shown = self.drawn.setdefault(table.id or "", {})
        plain = tuple(str(c) for c in cells)
        if key in table.rows:
            before = shown.get(key, ())
            for i, (column, cell) in enumerate(zip(columns, cells, strict=True)):
                if i >= len(before) or before[i] != plain[i]:  # only the cells that changed
                    table.update_cell(key, column, cell)
        else:
            table.add_row(*cells, key=key)
        shown[key] = plain

    def remove_row(self, table: DataTable[Any], key: str) -> None:
        if key in table.rows:
            table.remove_row(key)
        self.drawn.get(table.id or "", {}).pop(key, None)

    def tick(self) -> None:
        """Every 2 s: a sparkline sample, and the heartbeat ages of the rows in view (ages change
        without events; rows out of view get theirs when they next change or scroll in)."""
        self.fleet.sample()
        if not self.query("#agents-table"):  # closing
            return
        now = views.now_utc()
        closed = [n for n, lim in self.fleet.limits.items() if lim.get("closed_until")]
        self.fleet.dirty.limits.update(closed)  # their countdowns (a reopened one shows "-")
        self.fleet.dirty.nodes.update(self.fleet.nodes)  # heartbeat ages (a few rows, cells that changed)
        agents = self.query_one("#agents-table", DataTable)
        first = int(agents.scroll_y)
        for row in agents.ordered_rows[first : first + agents.size.height]:
            if agent := self.fleet.agents.get(row.key.value or ""):
                agents.update_cell(row.key, "heartbeat", views.age(agent.get("last_heartbeat"), now))

    def agent_names(self) -> dict[str, str]:
        return {a["id"]: a["name"] for a in self.fleet.agents.values()}

    def matches(self, text: str) -> bool:
        return not self.filter or self.filter.lower() in text.lower()

    # --- keys -------------------------------------------------------------------------------------

    def action_pane(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("shown")
        self.apply_filter("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.apply_filter(event.value)
        event.input.remove_class("shown")
        self.focus_table()

    def apply_filter(self, text: str) -> None:
        self.filter = text.strip()
        for table_id in TABLES.values():
            self.query_one(f"#{table_id}", DataTable).clear()
        self.drawn.clear()
        dirty = self.fleet.dirty
        dirty.agents |= set(self.fleet.agents)
        dirty.tasks |= set(self.fleet.tasks)
        dirty.runs |= set(self.fleet.runs)
        dirty.limits |= set(self.fleet.limits)
        dirty.nodes |= set(self.fleet.nodes)
        self.flush()

    def focus_table(self) -> None:
        if table_id := TABLES.get(self.pane):
            self.query_one(f"#{table_id}", DataTable).focus()

    def on_tabbed_content_tab_activated(self) -> None:
        self.focus_table()

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_details()

    def action_details(self) -> None:
        self.show_details(self.pane)

    def action_logs(self) -> None:
        self.show_details(self.pane)

    @work(group="details")
    async def show_details(self, pane: str) -> None:
        try:
            if pane == "agents" and (agent_id := self.selected("agents-table")):
                agent = as_dict(await self.client.get_agent(agent_id))
                tail = (await self.client.agent_logs(agent_id, offset=-8192)).text
                screen = DetailScreen(f"agent {agent['name']}", agent_detail(agent, tail, views.now_utc()))
            elif pane == "queue" and (task_id := self.selected("tasks-table")):
                if await terminal.attach(self, self.client, self.fleet.tasks.get(task_id, {"id": task_id})):
                    return  # an interactive task: its terminal, not its details
                task = as_dict(await self.client.get_task(task_id))
                logs = (await self.client.task_logs(task_id)).text
                extra = attempt_files.view(*await attempt_files.load(self.client, task_id))  # diff, artifacts
                title = f"task {task_id[:8]} {task['type']}"
                screen = DetailScreen(title, Group(task_detail(task, logs), extra))
            elif pane == "workflows" and (run_id := self.selected("runs-table")):
                screen = RunScreen(as_dict(await self.client.get_run(run_id)), self.agent_names())
            elif pane == "limits" and (name := self.selected("limits-table")):
                screen = DetailScreen(
                    f"limit {name}", limit_detail(as_dict(await self.client.get_limit(name)))
                )
            elif pane == "nodes" and (name := self.selected("nodes-table")):
                screen = DetailScreen(f"node {name}", kv_table(as_dict(await self.client.get_node(name))))
            else:
                return
        except (ClientError, ValueError) as exc:
            self.notify(f"cannot load details: {exc}", severity="error")
            return
        await self.push_screen(screen)

    async def acted(self) -> None:
        await self.refresh_snapshot()  # a pause, a cordon or a limit's state show at once

    async def on_unmount(self) -> None:
        await self.client.aclose()
