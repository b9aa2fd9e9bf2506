"""The dashboard driven by Textual's Pilot against a real hived with real agents: rows appear as
agents register, a killed agent's row changes, keys restart an agent and cancel a task and a run,
and the app says so when hived goes away and recovers by itself."""

from __future__ import annotations

import asyncio
import io
import os
import signal
from collections.abc import Callable
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from hivectl.client import AsyncClient
from hivectl.endpoint import Endpoint
from tests.helpers import Hived
from tui.app import HiveApp

SIZE = (150, 45)


async def until(pilot: Pilot[Any], predicate: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if value := predicate():
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def screen_text(app: HiveApp) -> str:
    """The screen as a person sees it, as plain text (what Textual's screenshot renders, unstyled)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, color_system=None)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def cell(app: HiveApp, table_id: str, key: str, column: str) -> str | None:
    table = app.query_one(f"#{table_id}", DataTable)
    return str(table.get_cell(key, column)) if key in table.rows else None


def app_for(hived: Hived, refresh: float = 1.0) -> HiveApp:
    return HiveApp(AsyncClient(Endpoint(socket=hived.socket)), refresh=refresh, flush=0.1)


async def select(pilot: Pilot[Any], app: HiveApp, table_id: str, key: str) -> None:
    table = app.query_one(f"#{table_id}", DataTable)
    table.move_cursor(row=table.get_row_index(key))
    table.focus()
    await pilot.pause()


async def test_rows_appear_and_a_killed_agent_changes_on_screen(hived: Hived) -> None:
    app = app_for(hived)
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot, lambda: "connected to" in str(app.query_one("#conn", Static).render()), what="connected"
        )
        agent = hived.spawn(
            "watched",
            {"python": "hivectl.agent.builtin:echo"},
            wait_active=False,
            restart={"policy": "never"},
        )
        await until(
            pilot, lambda: cell(app, "agents-table", agent["id"], "status") == "active", what="row active"
        )
        assert cell(app, "agents-table", agent["id"], "name") == "watched"
        pid = hived.api("GET", "/agents/watched")["pid"]
        os.killpg(pid, signal.SIGKILL)
        await until(
            pilot,
            lambda: cell(app, "agents-table", agent["id"], "status") not in ("active", "busy"),
            what="the killed agent's row changes",
        )
        assert (
            cell(app, "agents-table", agent["id"], "status") == hived.api("GET", "/agents/watched")["status"]
        )


async def test_keys_restart_an_agent_and_cancel_a_task_and_a_run(hived: Hived) -> None:
    agent = hived.spawn("sleeper", {"python": "hivectl.agent.builtin:act"}, max_concurrency=2)
    app = app_for(hived)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, "agents-table", agent["id"], "status"), what="agent row")
        await select(pilot, app, "agents-table", agent["id"])
        await pilot.press("r")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen", what="confirmation")
        await pilot.press("y")
        await until(pilot, lambda: hived.api("GET", "/agents/sleeper")["incarnation"] == 2, what="restarted")

        task = hived.submit("nap", payload={"sleep": 60})
        await pilot.press("2")
        await until(pilot, lambda: cell(app, "tasks-table", task["id"], "status"), what="task row")
        await select(pilot, app, "tasks-table", task["id"])
        await pilot.press("c")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen", what="confirmation")
        await pilot.press("n")  # no: nothing happens
        await pilot.pause(0.3)
        assert hived.task(task["id"])["status"] in ("pending", "assigned", "running")
        await pilot.press("c", "y")
        await until(pilot, lambda: hived.task(task["id"])["status"] == "cancelled", what="task cancelled")
        await until(pilot, lambda: cell(app, "tasks-table", task["id"], "status") == "cancelled", what="row")

        hived.api("POST", "/workflows", json={"name": "gate", "steps": [{"id": "ok", "type": "approval"}]})
        run = hived.api("POST", "/workflows/gate/execute", json={})
        await pilot.press("3")
        await until(
            pilot, lambda: "⏸" in (cell(app, "runs-table", run["id"], "steps") or ""), what="waiting gate"
        )
        await select(pilot, app, "runs-table", run["id"])
        await pilot.press("a", "y")
        await until(
            pilot, lambda: hived.api("GET", f"/runs/{run['id']}")["status"] == "succeeded", what="approved"
        )
        await until(
            pilot, lambda: cell(app, "runs-table", run["id"], "status") == "succeeded", what="run row"
        )


async def test_details_views(hived: Hived) -> None:
    agent = hived.spawn("echoer", {"python": "hivectl.agent.builtin:echo"})
    task = hived.submit("hello", payload={"x": 1})
    hived.wait_task(task["id"])
    app = app_for(hived)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, "agents-table", agent["id"], "name"), what="agent row")
        await select(pilot, app, "agents-table", agent["id"])
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.__class__.__name__ == "DetailScreen", what="agent details")
        await until(
            pilot,
            lambda: "incarnations" in (t := screen_text(app)) and "registered as echoer" in t,
            what="agent text",
        )
        await pilot.press("escape", "2")
        await until(
            pilot, lambda: cell(app, "tasks-table", task["id"], "status") == "completed", what="task row"
        )
        await select(pilot, app, "tasks-table", task["id"])
        await pilot.press("l")
        await until(pilot, lambda: app.screen.__class__.__name__ == "DetailScreen", what="task details")
        # the screen is pushed first, its text is filled from the API after
        await until(pilot, lambda: "attempts" in (t := screen_text(app)) and '"x": 1' in t, what="task text")
        await pilot.press("escape", "question_mark")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen", what="help")


async def test_says_disconnected_and_recovers(hived: Hived) -> None:
    app = app_for(hived)
    async with app.run_test(size=SIZE) as pilot:
        conn = app.query_one("#conn", Static)
        await until(pilot, lambda: "connected to" in str(conn.render()), what="connected")
        hived.stop()
        await until(pilot, lambda: "disconnected" in str(conn.render()), what="disconnected")
        assert conn.has_class("down")
        hived.start()
        agent = hived.spawn("late", {"python": "hivectl.agent.builtin:echo"}, wait_active=False)
        await until(pilot, lambda: "connected to" in str(conn.render()), timeout=30, what="reconnected")
        await until(
            pilot, lambda: cell(app, "agents-table", agent["id"], "status") == "active", what="new rows"
        )


async def test_limits_pane_waiting_reasons_cordons_and_pausing_the_queue(hived: Hived) -> None:
    hived.api("PUT", "/limits/writers", json={"name": "writers", "concurrency": 1})
    agent = hived.spawn("writer", {"python": "hivectl.agent.builtin:act"}, max_concurrency=2)
    limits = [{"name": "writers", "key": "hive"}]
    hived.submit("write", payload={"sleep": 60}, limits=limits)
    second = hived.submit("write", payload={"sleep": 60}, limits=limits)
    later = hived.submit("write", delay=3600)
    app = app_for(hived, refresh=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await until(
            pilot,
            lambda: (
                (
                    cell(app, "limits-table", "writers", "holders"),
                    cell(app, "limits-table", "writers", "waiting"),
                )
                == ("1", "1")
            ),
            what="the limit's holder and waiting task",
        )
        await select(pilot, app, "limits-table", "writers")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.__class__.__name__ == "DetailScreen", what="limit details")
        row = screen_text(app).partition("KEY")[2].splitlines()[1]  # the row of its one key
        assert [word for word in row.split() if word.isalnum()] == ["hive", "1", "1"]  # held, waiting
        await pilot.press("escape", "2")
        await until(
            pilot,
            lambda: cell(app, "tasks-table", second["id"], "waiting") == "limit writers[hive]",
            what="the waiting reason",
        )
        assert cell(app, "tasks-table", later["id"], "status") == "scheduled"
        assert (cell(app, "tasks-table", later["id"], "waiting") or "").startswith("until ")

        await pilot.press("p")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen", what="confirmation")
        await pilot.press("y")
        await until(pilot, lambda: hived.api("GET", "/status")["paused"], what="the queue paused")
        await until(
            pilot, lambda: "paused: all tasks" in str(app.query_one("#depth", Static).render()), what="shown"
        )
        held = hived.submit("write")
        await until(
            pilot,
            lambda: cell(app, "tasks-table", held["id"], "waiting") == "paused (all tasks)",
            what="a held task's reason",
        )
        await pilot.press("u", "y")
        await until(pilot, lambda: hived.task(held["id"])["status"] == "completed", what="resumed: it ran")
        assert hived.api("GET", "/status")["paused"] == []

        hived.api("POST", "/agents/writer/cordon")
        await pilot.press("1")
        await until(
            pilot,
            lambda: (cell(app, "agents-table", agent["id"], "status") or "").endswith(",cordoned"),
            what="the cordoned agent marked",
        )


async def test_nodes_pane_shows_this_hived_and_follows_its_agents(hived: Hived) -> None:
    first = hived.spawn("first", {"python": "hivectl.agent.builtin:echo"})
    app = app_for(hived, refresh=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        node = hived.api("GET", "/nodes")["items"][0]  # on SQLite: this hived alone
        name = node["name"]
        await until(pilot, lambda: cell(app, "nodes-table", name, "agents") == "first", what="the node's row")
        assert cell(app, "nodes-table", name, "name") == f"{name} (this)"
        assert cell(app, "nodes-table", name, "status") == "active"
        assert cell(app, "nodes-table", name, "pid") == str(node["pid"])
        assert "agents: active 1" in str(app.query_one("#nodes-summary", Static).render())
        hived.spawn("second", {"python": "hivectl.agent.builtin:echo"})  # no event says so: the refresh does
        await until(
            pilot, lambda: cell(app, "nodes-table", name, "agents") == "first,second", what="the new agent"
        )
        await until(
            pilot,
            lambda: "agents: active 2" in str(app.query_one("#nodes-summary", Static).render()),
            what="the agents counted",
        )
        hived.api("DELETE", f"/agents/{first['name']}")
        await until(pilot, lambda: cell(app, "nodes-table", name, "agents") == "second", what="one gone")
        await select(pilot, app, "nodes-table", name)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.__class__.__name__ == "DetailScreen", what="node details")
        await until(
            pilot, lambda: f"node {name}" in (t := screen_text(app)) and "slot" in t, what="node text"
        )
