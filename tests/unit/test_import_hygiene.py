"""The shape of the code, as far as pyproject's import-linter contracts cannot say it: no cycle between
any two modules of hived, hivectl and tui, and the forbidden lists of those contracts are complete."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("hived", "hivectl", "tui", cache_dir=None)


def module_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each a cycle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for module in sorted(graph.modules):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_no_import_cycle_between_modules(graph: grimp.ImportGraph) -> None:
    assert module_cycles(graph) == []


def test_forbidden_lists_name_every_part_of_hived_but_the_model(graph: grimp.ImportGraph) -> None:
    """A new package or module in hived must be added to the contracts (or be part of the model)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    parts = {m for m in graph.find_children("hived") if m != "hived.model"}
    for contract in config["contracts"][:2]:
        forbidden = {m for m in contract["forbidden_modules"] if m.startswith("hived.")}
        assert forbidden == parts, contract["name"]


def test_the_model_imports_nothing_of_hived_but_itself(graph: grimp.ImportGraph) -> None:
    for module in graph.find_descendants("hived.model") | {"hived.model"}:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith("hived"):
                assert imported.startswith("hived.model"), f"{module} imports {imported}"
