"""The dashboard's pop-ups: help, a confirmation for destructive actions, and the detail views of an
agent (incarnations, log tail), a task (attempts, result, logs) and a run (its steps as a tree)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static, Tree
from textual.widgets.tree import TreeNode

from tui.views import STEP_ICONS, age, parse_time, status

HELP = """\
[b]Panes[/b]      1 agents   2 queue   3 workflows   4 events   5 limits   6 nodes   (tab cycles)
[b]Move[/b]       arrows, page up/down, mouse; [b]enter[/b] details of the selected row
[b]Filter[/b]     /  type to filter the rows of the pane (esc clears)
[b]Agents[/b]     r restart   d drain and remove   x remove now   l logs
[b]Tasks[/b]      c cancel   l logs
[b]Runs[/b]       c cancel   a approve the waiting gate
[b]Queue[/b]      p pause every task   u resume (lift that pause)
[b]Other[/b]      ? this help   q quit

Destructive actions ask first. Live: changes come from hived's /events stream; RSS, CPU,
heartbeat ages, limits, nodes, pauses and why tasks wait are re-read every few seconds."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(HELP, id="help")
            yield Label("esc to close", classes="hint")


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no; `y`/`enter` confirm, `n`/`esc` cancel."""

    BINDINGS = [Binding("y,enter", "answer(True)", "yes"), Binding("n,escape", "answer(False)", "no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="question")
            with Horizontal(id="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class DetailScreen(ModalScreen[None]):
    """A scrollable view of one object; `content` is rendered once loaded."""

    BINDINGS = [Binding("escape,q", "dismiss", "close")]

    def __init__(self, title: str, content: RenderableType) -> None:
        super().__init__()
        self.title_text = title
        self.content = content

    def compose(self) -> ComposeResult:
        with Vertical(id="detail"):
            yield Label(self.title_text, id="detail-title")
            with VerticalScroll():
                yield Static(self.content, id="detail-body")
            yield Label("esc to close", classes="hint")


class RunScreen(ModalScreen[None]):
    """A run's steps as a tree that follows `needs`: each step under the first step it needs."""

    BINDINGS = [Binding("escape,q", "dismiss", "close")]

    def __init__(self, run: dict[str, Any], agent_names: dict[str, str]) -> None:
        super().__init__()
        self.run = run
        self.agent_names = agent_names

    def compose(self) -> ComposeResult:
        run = self.run
        title = f"run {run['id'][:8]}  {run.get('workflow')}  {run.get('status')}"
        tree: Tree[str] = Tree(title, id="steps")
        add_steps(tree.root, run.get("steps", []), self.agent_names)
        tree.root.expand_all()
        with Vertical(id="detail"):
            yield tree
            if run.get("error"):
                yield Label(Text(f"error: {run['error']}", style="red"))
            yield Label("esc to close", classes="hint")


def add_steps(root: TreeNode[str], steps: list[dict[str, Any]], agent_names: dict[str, str]) -> None:
    """Each step under the first step it needs; a `workflow:` step's child run under the step, with
    its own steps (nested as deep as the runs are)."""
    nodes: dict[str, TreeNode[str]] = {}
    for step in steps:
        needs = step.get("needs") or []
        parent = nodes.get(needs[0], root) if needs else root
        nodes[step["id"]] = node = parent.add(step_label(step, agent_names), expand=True)
        if child := step.get("child"):
            label = Text(f"run {str(child['id'])[:8]}  {child.get('workflow')}  ")
            label.append_text(status(child.get("status")))
            add_steps(node.add(label, expand=True), child.get("steps", []), agent_names)


def step_label(step: dict[str, Any], agent_names: dict[str, str]) -> Text:
    agent_id = step.get("agent_id")
    start, end = parse_time(step.get("started_at")), parse_time(step.get("finished_at"))
    took = f"{(end - start).total_seconds():.1f}s" if start and end else ""
    label = Text(f"{STEP_ICONS.get(step.get('status', ''), '?')} {step['id']} ")
    label.append_text(status(step.get("status")))
    extra = [agent_names.get(agent_id, agent_id[:8]) if agent_id else "", took]
    needs = step.get("needs") or []
    if len(needs) > 1:
        extra.append("needs " + ", ".join(needs))
    if step.get("error"):
        extra.append(str(step["error"]).splitlines()[0][:60])
    label.append("  " + "  ".join(e for e in extra if e), style="dim")
    return label


def kv_table(obj: dict[str, Any], skip: tuple[str, ...] = ()) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in obj.items():
        if key in skip or value in (None, [], {}):
            continue
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        table.add_row(key, Text(text))
    return table


def agent_detail(agent: dict[str, Any], log_tail: str, now: datetime) -> RenderableType:
    incarnations = Table("#", "PID", "STARTED", "ENDED", "EXIT", "REASON", box=None, header_style="bold")
    for inc in agent.get("incarnations", []):
        exit_text = f"signal {inc['signal']}" if inc.get("signal") else str(inc.get("exit_code") or "-")
        ended = age(inc.get("ended_at"), now) + " ago" if inc.get("ended_at") else "running"
        incarnations.add_row(
            str(inc["number"]),
            str(inc.get("pid") or "-"),
            age(inc["started_at"], now) + " ago",
            ended,
            exit_text,
            Text(inc.get("reason") or "-"),
        )
    return Group(
        kv_table(agent, skip=("incarnations", "config")),
        Text(""),
        Text("incarnations", style="bold"),
        incarnations,
        Text(""),
        Text("log (tail)", style="bold"),
        Text(log_tail or "(empty)"),
    )


def task_detail(task: dict[str, Any], logs: str) -> RenderableType:
    attempts = Table("#", "AGENT", "OUTCOME", "REASON", "ERROR", box=None, header_style="bold")
    for att in task.get("attempt_history", []):
        attempts.add_row(
            str(att["number"]),
            (att.get("agent_id") or "-")[:8],
            att.get("outcome") or "running",
            att.get("reason") or "-",
            Text((att.get("error") or "")[:80]),
        )
    return Group(
        kv_table(task, skip=("attempt_history",)),
        Text(""),
        Text("attempts", style="bold"),
        attempts,
        Text(""),
        Text("output", style="bold"),
        Text(logs[-8000:] or "(none)"),
    )


def limit_detail(limit: dict[str, Any]) -> RenderableType:
    """A limit (`GET /limits/{name}`) and its keys: units held and tasks waiting per key."""
    keys = Table("KEY", "HOLDERS", "WAITING", box=None, header_style="bold")
    for key in limit.get("keys", []):
        keys.add_row(
            Text(key["key"] if key.get("key") is not None else "-"), str(key["holders"]), str(key["waiting"])
        )
    return Group(kv_table(limit, skip=("keys",)), Text(""), Text("keys", style="bold"), keys)
