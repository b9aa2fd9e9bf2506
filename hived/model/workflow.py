"""The `kind: Workflow` document: steps with needs, conditions, retries, timeouts; parameters with
defaults. Validated strictly: pydantic for shapes, hived.model.graph for the graph (unknown needs,
cycles, CEL syntax, unknown params, references to steps that are not needed)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator

from hived.model import fanout, subflows
from hived.model.affinity import affinity_errors
from hived.model.fields import Capabilities, Duration, JsonObject, Strict, TaskType
from hived.model.graph import GraphError, Node, validate
from hived.model.limits import LimitRef, check_refs
from hived.model.schemas import NAME_RE
from hived.model.tasks import RetryPolicy
from hived.model.usage import Budget, Estimate, check_estimate
from hived.model.waits import APPROVAL, OnTimeout, WaitFor, wait_kind, wait_problem

STEP_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
PARAM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MAX_STEPS = 5000


class StepRetry(RetryPolicy):
    max_attempts: int = Field(default=3, ge=1, le=100)


class StepSpec(Strict):
    id: str
    type: TaskType | None = None  # none for a step that only waits (sleep, wait_for) or runs a sub-workflow
    requires: Capabilities = Field(default_factory=list)
    payload: JsonObject = Field(default_factory=dict)
    needs: list[str] = Field(default_factory=list)
    when: str | None = None
    retry: StepRetry = Field(default_factory=StepRetry)
    timeout: Duration | None = None
    stall_timeout: Duration | None = None
    success_when: str | None = None
    priority: int = Field(default=5, ge=0, le=9, strict=True)
    continue_on_failure: bool = False
    # A key's `${{ }}` is rendered against the step's task payload (`payload.x`), when it is submitted.
    limits: Annotated[list[LimitRef], AfterValidator(check_refs)] = Field(default_factory=list)
    # Steps that wait (hived.model.waits): a durable timer, a signal, an approval's time limit and rework.
    sleep: Duration | None = None
    wait_for: WaitFor | None = None
    on_timeout: OnTimeout | None = None
    max_rework: int = Field(default=3, ge=0, le=100, strict=True)
    # one task per item of a list made at run time (hived.model.fanout); None: all items at once
    for_each: str | list[Any] | None = None
    max_parallel: int | None = Field(default=None, ge=1, le=fanout.MAX_ITEMS, strict=True)
    # a sub-workflow: the step waits for a run of this workflow (hived.model.subflows)
    workflow: str | None = None
    params: JsonObject = Field(default_factory=dict)
    budget: Budget | None = None  # the step's task (all its attempts)
    estimate: Estimate | None = None  # it does not start unless this fits in the run's budget left
    affinity: str | None = None  # the agent (and workspace branch) of that step: hived/model/affinity.py

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not STEP_ID_RE.match(value):
            raise ValueError(
                "must be 1-63 letters, digits or '_', starting with a letter or '_' "
                "(it is a name in expressions: steps.<id>.result)"
            )
        return value

    @field_validator("for_each")
    @classmethod
    def _for_each(cls, value: str | list[Any] | None) -> str | list[Any] | None:
        if (problem := fanout.shape_problem({"for_each": value})) is not None:
            raise ValueError(problem)
        return value

    @field_validator("workflow")
    @classmethod
    def _workflow(cls, value: str | None) -> str | None:
        if value is not None and not NAME_RE.match(value):
            raise ValueError("must be a workflow name: 1-63 lowercase letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _kind(self) -> StepSpec:
        fields = {"type": self.type, "for_each": self.for_each, "max_parallel": self.max_parallel}
        problem = subflows.shape_problem({name: getattr(self, name) for name in subflows.STEP_FIELDS})
        if (problem := problem or fanout.shape_problem(fields)) is not None:
            raise ValueError(problem)
        if self.type == APPROVAL and self.for_each is not None:
            raise ValueError("an approval step cannot fan out (for_each)")
        return self

    @model_validator(mode="after")
    def _waits(self) -> StepSpec:
        if problem := wait_problem(self):
            raise ValueError(problem)
        check_estimate(self.estimate, self.budget)
        return self

    @property
    def node(self) -> Node:
        return Node(self.id, tuple(self.needs), self.continue_on_failure)


class WorkflowSpec(Strict):
    """A Workflow document (`kind: Workflow`) or the body of `POST /workflows`."""

    name: str
    description: str | None = Field(default=None, max_length=2000)
    params: JsonObject = Field(default_factory=dict)
    timeout: Duration | None = Field(
        default=None, description="the whole run; unfinished steps are cancelled"
    )
    steps: list[StepSpec] = Field(min_length=1, max_length=MAX_STEPS)
    outputs: JsonObject = Field(
        default_factory=dict, description="the run's result, templated from its steps when it succeeds"
    )
    budget: Budget | None = Field(default=None, description="the whole run: all its steps' spend")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("must be 1-63 lowercase letters, digits, '.', '_' or '-'")
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not PARAM_RE.match(key):
                raise ValueError(f"param name {key!r} must be letters, digits or '_' (a name in expressions)")
        return value

    @property
    def nodes(self) -> list[Node]:
        return [step.node for step in self.steps]

    def step(self, step_id: str) -> StepSpec:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def definition(self) -> dict[str, Any]:
        """The canonical stored form: equal documents give equal definitions."""
        return self.model_dump(mode="json", exclude_none=True)


def graph_errors(spec: WorkflowSpec) -> list[GraphError]:
    steps = [step.model_dump() for step in spec.steps]
    errors = validate(steps, spec.params) + affinity_errors(steps)
    return errors + subflows.output_errors(spec.outputs, spec.params, [step.id for step in spec.steps])


def step_type(definition: dict[str, Any]) -> str:
    """What a stored step runs, as runs show it: its task type, `workflow:NAME`, `sleep` or `signal`."""
    if definition.get("type"):
        return str(definition["type"])
    if definition.get("workflow"):
        return f"workflow:{definition['workflow']}"
    return wait_kind(definition) or ""


def describe(error: GraphError) -> str:
    """`steps[2].needs[0]: step 'b' needs unknown step 'x'`, for API errors (no file lines there)."""
    path = ""
    for part in error.path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return f"{path}: {error.message}"


class ParamError(ValueError):
    pass


def coerce_params(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The run's params: the defaults overridden by `given`. A string given for a param whose default
    is a number, a boolean, a list or a map is parsed to that type (`-p n=3` is the number 3).
    A param whose default is null is required."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults)) or "none"
        raise ParamError(f"unknown param {unknown[0]!r} (this workflow's params: {known})")
    params = dict(defaults)
    for key, value in given.items():
        params[key] = _coerce(key, defaults[key], value)
    missing = sorted(k for k, v in params.items() if v is None)
    if missing:
        raise ParamError(f"param {missing[0]!r} is required (give it with -p {missing[0]}=VALUE)")
    return params


def _coerce(key: str, default: Any, value: Any) -> Any:
    if not isinstance(value, str) or default is None or isinstance(default, str):
        return value
    if isinstance(default, bool):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise ParamError(f"param {key!r}: {value!r} is not a boolean (true or false)")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ParamError(f"param {key!r}: {value!r} is not an integer") from None
    if isinstance(default, float):
        try:
            return float(value)
        except ValueError:
            raise ParamError(f"param {key!r}: {value!r} is not a number") from None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = None
    expected = type(default)
    if not isinstance(parsed, expected):
        raise ParamError(f"param {key!r}: expected a JSON {expected.__name__}, got {value!r}")
    return parsed
