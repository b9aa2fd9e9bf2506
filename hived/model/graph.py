"""Workflow step graphs, as a document declares them: validation (unknown needs, cycles named,
references to params and steps). What runs when is decided in `hived.workflows.rules`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from hived.model.expressions import ExpressionError, check_syntax
from hived.model.fanout import item_problem

TEMPLATE_RE = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
PARAM_REF_RE = re.compile(r"\bparams\.([A-Za-z_][A-Za-z0-9_]*)")
STEP_REF_RE = re.compile(r"\bsteps\.([A-Za-z_][A-Za-z0-9_-]*)")
COMMENT_REF_RE = re.compile(r"\bsteps\.([A-Za-z_][A-Za-z0-9_]*)\.comment\b")


@dataclass(frozen=True)
class GraphError(ValueError):
    """A problem at `path` (e.g. ("steps", 2, "needs", 0)) of the workflow document."""

    path: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Node:
    id: str
    needs: tuple[str, ...]
    continue_on_failure: bool = False


def find_cycle(nodes: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a list of ids (first == last), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(nodes, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for need in nodes.get(node, ()):
            if need not in colour:
                continue
            if colour[need] == GREY:
                return stack[stack.index(need) :] + [need]
            if colour[need] == WHITE and (cycle := visit(need)):
                return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for node in nodes:
        if colour[node] == WHITE and (cycle := visit(node)):
            return cycle
    return None


def ancestors(nodes: Mapping[str, Sequence[str]], node: str) -> set[str]:
    seen: set[str] = set()
    todo = list(nodes.get(node, ()))
    while todo:
        current = todo.pop()
        if current not in seen and current in nodes:
            seen.add(current)
            todo.extend(nodes[current])
    return seen


def expressions_in(value: object) -> Iterable[tuple[tuple[str | int, ...], str]]:
    """Every `${{ expr }}` inside a payload, with its path."""
    if isinstance(value, str):
        for match in TEMPLATE_RE.finditer(value):
            yield (), match.group(1)
    elif isinstance(value, dict):
        for key, item in value.items():
            for path, expr in expressions_in(item):
                yield (key, *path), expr
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for path, expr in expressions_in(item):
                yield (index, *path), expr


def validate(steps: Sequence[Mapping[str, object]], params: Iterable[str]) -> list[GraphError]:
    """All the graph's problems: duplicate ids, unknown needs, cycles, CEL syntax, unknown params,
    and references to steps that are not among a step's (transitive) needs."""
    errors: list[GraphError] = []
    known_params = set(params)
    # `steps.<gate>.comment` may be used before the gate: a rework runs earlier steps again with it.
    gates = {str(step["id"]) for step in steps if step.get("type") == "approval"}
    graph: dict[str, list[str]] = {}
    index: dict[str, int] = {}
    for i, step in enumerate(steps):
        step_id = str(step["id"])
        if step_id in graph:
            errors.append(GraphError(("steps", i, "id"), f"duplicate step id {step_id!r}"))
            continue
        graph[step_id] = [str(n) for n in step.get("needs") or []]  # type: ignore[union-attr]
        index[step_id] = i
    for step_id, needs in graph.items():
        for j, need in enumerate(needs):
            if need not in graph:
                errors.append(
                    GraphError(
                        ("steps", index[step_id], "needs", j), f"step {step_id!r} needs unknown step {need!r}"
                    )
                )
    if cycle := find_cycle(graph):
        errors.append(
            GraphError(("steps", index[cycle[0]], "needs"), f"dependency cycle: {' -> '.join(cycle)}")
        )
        return errors
    for step_id, i in index.items():
        step = steps[i]
        found: list[tuple[tuple[str | int, ...], str]] = []
        if isinstance(step.get("when"), str):
            found.append((("when",), str(step["when"])))
        for key in ("payload", "for_each", "params"):  # the templated fields
            found += [((key, *p), e) for p, e in expressions_in(step.get(key) or {})]
        before = ancestors(graph, step_id)
        for path, expr in found:
            where = ("steps", i, *path)
            try:
                check_syntax(expr)
            except ExpressionError as exc:
                errors.append(GraphError(where, f"step {step_id!r}: {exc}"))
                continue
            if problem := item_problem(step, str(path[0]), expr):
                errors.append(GraphError(where, f"step {step_id!r} {problem}"))
            for name in PARAM_REF_RE.findall(expr):
                if name not in known_params:
                    errors.append(GraphError(where, f"step {step_id!r} uses unknown param {name!r}"))
            plain = COMMENT_REF_RE.sub(lambda m: "" if m.group(1) in gates else m.group(0), expr)
            for ref in STEP_REF_RE.findall(plain):
                if ref not in before:
                    errors.append(
                        GraphError(
                            where, f"step {step_id!r} uses steps.{ref} but does not need it (add it to needs)"
                        )
                    )
    return errors
