"""Sub-workflows (`workflow: NAME` steps) and a workflow's `outputs`, as rules: the shape of a step
that runs another workflow, the params it gives that workflow, cycles through sub-workflows, and the
templates of `outputs`. The engine's side is hived.workflows.children."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hived.model.expressions import ExpressionError, check_syntax
from hived.model.graph import PARAM_REF_RE, STEP_REF_RE, GraphError, expressions_in

MAX_DEPTH = 10  # sub-workflows inside sub-workflows: deeper is refused at run time (and shown so)
# fields that only a task step has: a `workflow:` step gives its child run `params` instead
TASK_FIELDS = ("type", "payload", "requires", "success_when", "limits", "stall_timeout", "for_each")
STEP_FIELDS = (*TASK_FIELDS, "workflow", "params")  # what shape_problem looks at


def shape_problem(fields: Mapping[str, Any]) -> str | None:
    """Why a step's `workflow`/`params` cannot be, or None (`fields`: the step's fields; a field
    left empty counts as not given, as a stored definition keeps the defaults)."""
    if fields.get("workflow") is None:
        if fields.get("params"):
            return "params are for a workflow: step (a task step has a payload)"
        return None
    extra = [name for name in TASK_FIELDS if fields.get(name) not in (None, [], {})]
    if extra:
        return f"a workflow: step runs a sub-workflow, not a task: no {', '.join(extra)}"
    return None


def references(steps: Iterable[Any]) -> dict[str, str]:
    """step id -> the workflow it runs, for the `workflow:` steps among `steps` (StepSpecs)."""
    return {step.id: step.workflow for step in steps if getattr(step, "workflow", None)}


def cycle(name: str, runs: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A path of sub-workflows from `name` back to itself (`runs`: workflow -> the workflows its
    steps run), e.g. [a, b, a]; None if there is none. The stored workflows have no cycle (each was
    refused), so only cycles through `name` are looked for."""
    todo, seen = [(name, [name])], {name}
    while todo:
        current, path = todo.pop()
        for child in sorted(set(runs.get(current, ()))):
            if child == name:
                return [*path, name]
            if child not in seen:
                seen.add(child)
                todo.append((child, [*path, child]))
    return None


def param_problem(given: Mapping[str, Any], declared: Mapping[str, Any], child: str) -> str | None:
    """Why the params a step gives workflow `child` (which declares `declared`) cannot be, or None."""
    for key in given:
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            return f"workflow {child!r} has no param {key!r} (its params: {known})"
    for key, default in declared.items():
        if default is None and key not in given:
            return f"workflow {child!r} needs param {key!r} (it has no default)"
    return None


def output_errors(
    outputs: Mapping[str, Any], params: Iterable[str], steps: Iterable[str]
) -> list[GraphError]:
    """Problems of a workflow's `outputs`: CEL syntax, unknown params, unknown steps."""
    known_params, known_steps = set(params), set(steps)
    errors = []
    for path, expr in expressions_in(dict(outputs)):
        where = ("outputs", *path)
        try:
            check_syntax(expr)
        except ExpressionError as exc:
            errors.append(GraphError(where, f"outputs: {exc}"))
            continue
        for name in PARAM_REF_RE.findall(expr):
            if name not in known_params:
                errors.append(GraphError(where, f"outputs use unknown param {name!r}"))
        for ref in STEP_REF_RE.findall(expr):
            if ref not in known_steps:
                errors.append(GraphError(where, f"outputs use unknown step {ref!r}"))
    return errors


def runs_of(definition: Mapping[str, Any]) -> list[str]:
    """The workflows the steps of a stored definition run."""
    return [str(step["workflow"]) for step in definition.get("steps", []) if step.get("workflow")]


def reference_problems(
    spec: Any, others: Mapping[str, Mapping[str, Any]], strict: bool
) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems of the `workflow:` steps of `spec` (a WorkflowSpec) given the `others` it may run
    (name -> definition): params the child does not have or lacks, a cycle through sub-workflows,
    and, when `strict` (hived, which knows every workflow), an unknown workflow. As (path, message)."""
    declared = {name: dict(defn.get("params") or {}) for name, defn in others.items()}
    declared[spec.name] = spec.params
    runs = {name: runs_of(defn) for name, defn in others.items()}
    runs[spec.name] = [step.workflow for step in spec.steps if step.workflow]
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for i, step in enumerate(spec.steps):
        if not step.workflow:
            continue
        if step.workflow not in declared:
            if strict:
                message = f"unknown workflow {step.workflow!r} (apply it first, or in the same files)"
                problems.append((("steps", i, "workflow"), message))
            continue
        if problem := param_problem(step.params, declared[step.workflow], step.workflow):
            problems.append((("steps", i, "params"), problem))
    if (found := cycle(spec.name, runs)) is not None:
        i = next(i for i, step in enumerate(spec.steps) if step.workflow == found[1])
        problems.append((("steps", i, "workflow"), f"a cycle through sub-workflows: {' -> '.join(found)}"))
    return problems
