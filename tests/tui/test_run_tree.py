"""The run tree of the dashboard: each step under the first step it needs, and a `workflow:` step's
child run (with its own steps) under the step."""

from __future__ import annotations

from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui.screens import add_steps


def step(step_id: str, status: str = "succeeded", needs: list[str] | None = None, **more: object) -> dict:
    return {"id": step_id, "status": status, "needs": needs or [], **more}


def outline(node: TreeNode[str], depth: int = 0) -> list[str]:
    lines = []
    for child in node.children:
        lines.append("  " * depth + str(child.label).split("  ")[0])
        lines += outline(child, depth + 1)
    return lines


def test_a_child_run_is_nested_under_its_step() -> None:
    child = {
        "id": "c0ffee00-1",
        "workflow": "build-one",
        "status": "running",
        "steps": [step("compile"), step("check", "running", ["compile"])],
    }
    steps = [step("list"), step("api", "running", ["list"], child=child), step("publish", "pending", ["api"])]
    tree: Tree[str] = Tree("run")
    add_steps(tree.root, steps, {})
    assert outline(tree.root) == [
        "✔ list succeeded",
        "  ▶ api running",
        "    run c0ffee00",
        "      ✔ compile succeeded",
        "        ▶ check running",
        "    · publish pending",
    ]
