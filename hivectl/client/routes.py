"""Every route of hived that hivectl, the TUI and the benches use, described once as a `Call` (method,
path, query, body, how to read the answer). `Client` and `AsyncClient` both send these descriptions,
so the two cannot drift apart."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

from hivectl.client.errors import ClientError

if TYPE_CHECKING:  # imported when first used: they are most of a command's start-up time
    from pydantic import BaseModel

    from hivectl.client.answers import Answer
    from hived.model.limits import AppliedLimit, LimitInfo, LimitList, LimitSpec
    from hived.model.queue import BulkResult, QueueState
    from hived.model.runs import AppliedWorkflow, ContextEntry, Run, RunList, WorkflowInfo, WorkflowList
    from hived.model.schemas import (
        Agent,
        AgentDetail,
        AgentList,
        AgentSpec,
        Health,
        HeartbeatRequest,
        HeartbeatResponse,
        RegisterRequest,
        RegisterResponse,
        Status,
        Task,
        TaskDetail,
        TaskList,
        TaskSubmit,
    )
    from hived.model.usage import UsageReport
    from hived.model.workflow import WorkflowSpec

T = TypeVar("T")

# The token routes' schemas live with hived's routes, not in hived.model: tokens stay JSON objects.
Json = Any

READ_TIMEOUT = 40.0  # hived sends a keep-alive every 15 s on /events: silence this long is a dead link


@dataclass(frozen=True)
class Applied:
    """The answer to `PUT /agents/{name}`."""

    agent: Agent
    action: str  # created | configured | unchanged


@dataclass(frozen=True)
class LogChunk:
    """Log text from the asked offset, and the offset to ask for next (`X-Log-Offset`)."""

    text: str
    offset: int


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request, and how to read its answer."""

    method: str
    path: str
    parse: Callable[[Answer], T]
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    timeout: float | None = None  # None: the client's default

    def request_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"params": self.params}
        if self.body is not None:
            kwargs["json"] = self.body
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return kwargs


@dataclass(frozen=True)
class Stream:
    """A request whose answer is read as it comes (server-sent events)."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    timeout: tuple[float, float | None, float, float]  # connect, read (None: wait forever), write, pool

    def request_kwargs(self) -> dict[str, Any]:
        return {"params": self.params, "headers": self.headers, "timeout": self.timeout}


# The module of hived.model that has each model a route's answer is read as (else schemas), imported by
# the first answer read (a command that never reads a model never imports pydantic).
MODEL_MODULES = {
    **dict.fromkeys(["AppliedWorkflow", "ContextEntry", "Run", "RunList"], "runs"),
    **dict.fromkeys(["WorkflowInfo", "WorkflowList"], "runs"),
    **dict.fromkeys(["AppliedLimit", "LimitInfo", "LimitList"], "limits"),
    **dict.fromkeys(["AppliedSchedule", "Fired", "ScheduleInfo", "ScheduleList"], "schedules"),
    **dict.fromkeys(["BulkResult", "QueueState"], "queue"),
    **dict.fromkeys(["Task", "TaskDetail", "TaskList", "TaskSubmit"], "tasks"),
    "UsageReport": "usage",
    **dict.fromkeys(["Node", "NodeList"], "nodes"),
    "Terminal": "terminals",
}


def model_class(name: str) -> type[BaseModel]:
    """The model `name` of hived.model."""
    module = importlib.import_module(f"hived.model.{MODEL_MODULES.get(name, 'schemas')}")
    return getattr(module, name)  # type: ignore[no-any-return]


def _model(name: str) -> Callable[[Answer], Any]:
    return lambda resp: model_class(name).model_validate(resp.json())


def _json(resp: Answer) -> Json:
    return resp.json()


def _entries(resp: Answer) -> list[ContextEntry]:
    from pydantic import TypeAdapter

    return TypeAdapter(list[model_class("ContextEntry")]).validate_python(resp.json())  # type: ignore[misc]


def _applied(resp: Answer) -> Applied:
    data = resp.json()
    return Applied(agent=model_class("Agent").model_validate(data["agent"]), action=str(data["action"]))


def _log_chunk(offset: int) -> Callable[[Answer], LogChunk]:
    return lambda resp: LogChunk(resp.text, int(resp.headers.get("X-Log-Offset", max(offset, 0))))


def _ref(ref: str) -> str:
    """A path segment: an id, an id prefix or an agent name, quoted so it stays one segment."""
    if not ref.strip():
        raise ClientError("an empty id or name")
    return quote(ref, safe="")


def _params(**params: Any) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def _body(model: BaseModel) -> Any:
    return model.model_dump(mode="json", exclude_defaults=True)


class Routes:
    """Every route of hived the clients use, as `Call` descriptions."""

    # --- daemon -----------------------------------------------------------------------------------

    @staticmethod
    def health() -> Call[Health]:
        return Call("GET", "/healthz", _model("Health"))

    @staticmethod
    def status() -> Call[Status]:
        return Call("GET", "/status", _model("Status"))

    @staticmethod
    def events(after: int | None, follow: bool) -> Stream:
        """`after`: resume after this event id (sent as Last-Event-ID); None: the whole backlog."""
        headers = {} if after is None else {"Last-Event-ID": str(after)}
        read = READ_TIMEOUT if follow else None
        return Stream("GET", "/events", {"follow": str(follow).lower()}, headers, (10.0, read, 10.0, 10.0))

    # --- agents -----------------------------------------------------------------------------------

    @staticmethod
    def spawn_agent(spec: AgentSpec) -> Call[Agent]:
        return Call("POST", "/agents", _model("Agent"), body=_body(spec))

    @staticmethod
    def apply_agent(spec: AgentSpec) -> Call[Applied]:
        body = {**_body(spec), "name": spec.name}
        return Call("PUT", f"/agents/{_ref(spec.name)}", _applied, body=body)

    @staticmethod
    def list_agents(
        status: str | None = None,
        type: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> Call[AgentList]:
        params = _params(status=status, type=type, limit=limit, offset=offset)
        return Call("GET", "/agents", _model("AgentList"), params=params)

    @staticmethod
    def get_agent(ref: str) -> Call[AgentDetail]:
        return Call("GET", f"/agents/{_ref(ref)}", _model("AgentDetail"))

    @staticmethod
    def delete_agent(ref: str, drain: bool = False, timeout: float = 60.0) -> Call[Agent]:
        params = {"drain": "true" if drain else "false", "timeout": timeout}
        return Call("DELETE", f"/agents/{_ref(ref)}", _model("Agent"), params=params, timeout=timeout + 30)

    @staticmethod
    def restart_agent(ref: str) -> Call[Agent]:
        return Call("POST", f"/agents/{_ref(ref)}/restart", _model("Agent"), timeout=120.0)

    @staticmethod
    def cordon_agent(ref: str, cordoned: bool = True) -> Call[Agent]:
        verb = "cordon" if cordoned else "uncordon"
        return Call("POST", f"/agents/{_ref(ref)}/{verb}", _model("Agent"))

    @staticmethod
    def agent_logs(ref: str, offset: int = 0, incarnation: int | None = None) -> Call[LogChunk]:
        params = _params(offset=offset, incarnation=incarnation)
        return Call("GET", f"/agents/{_ref(ref)}/logs", _log_chunk(offset), params=params)

    # --- the agent protocol (hive-agent has its own stdlib client; these serve tools and benches) ---

    @staticmethod
    def register_agent(request: RegisterRequest) -> Call[RegisterResponse]:
        body = request.model_dump(mode="json", exclude_none=True)
        return Call("POST", "/agents/register", _model("RegisterResponse"), body=body)

    @staticmethod
    def heartbeat(agent_id: str, request: HeartbeatRequest) -> Call[HeartbeatResponse]:
        body = request.model_dump(mode="json")
        return Call("POST", f"/agents/{_ref(agent_id)}/heartbeat", _model("HeartbeatResponse"), body=body)

    # --- tasks ------------------------------------------------------------------------------------

    @staticmethod
    def submit_task(task: TaskSubmit, wait: float | None = None) -> Call[Task]:
        """With `wait`: hived answers once the task has ended, or after `wait` s."""
        timeout = wait + 30 if wait else None
        return Call(
            "POST", "/tasks", _model("Task"), body=_body(task), params=_params(wait=wait), timeout=timeout
        )

    @staticmethod
    def submit_tasks(tasks: Sequence[TaskSubmit]) -> Call[TaskList]:
        """Up to 1,000 tasks in one request: all are accepted, or none."""
        return Call("POST", "/tasks/batch", _model("TaskList"), body={"tasks": [_body(t) for t in tasks]})

    @staticmethod
    def list_tasks(
        status: str | None = None,
        type: str | None = None,
        agent: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        run: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> Call[TaskList]:
        params = _params(status=status, type=type, agent=agent, limit=limit, offset=offset, run=run)
        if labels:
            params["label"] = [f"{key}={value}" for key, value in labels.items()]
        return Call("GET", "/tasks", _model("TaskList"), params=params)

    @staticmethod
    def bulk_tasks(action: str, filters: dict[str, Any]) -> Call[BulkResult]:
        """`action` (cancel or retry) on the tasks matching `filters` (a BulkRequest body)."""
        return Call("POST", f"/tasks/{action}", _model("BulkResult"), body=filters, timeout=120.0)

    @staticmethod
    def pause_queue(selector: dict[str, Any]) -> Call[QueueState]:
        return Call("POST", "/tasks/pause", _model("QueueState"), body=selector)

    @staticmethod
    def resume_queue(selector: dict[str, Any]) -> Call[QueueState]:
        return Call("POST", "/tasks/resume", _model("QueueState"), body=selector)

    @staticmethod
    def get_task(ref: str, wait: float | None = None) -> Call[TaskDetail]:
        """With `wait`: hived answers once the task has ended, or after `wait` s."""
        return Call("GET", f"/tasks/{_ref(ref)}", _model("TaskDetail"), params=_params(wait=wait))

    @staticmethod
    def cancel_task(ref: str) -> Call[Task]:
        return Call("PUT", f"/tasks/{_ref(ref)}/cancel", _model("Task"))

    @staticmethod
    def retry_task(ref: str) -> Call[Task]:
        return Call("POST", f"/tasks/{_ref(ref)}/retry", _model("Task"))

    @staticmethod
    def task_logs(ref: str, offset: int = 0) -> Call[LogChunk]:
        return Call("GET", f"/tasks/{_ref(ref)}/logs", _log_chunk(offset), params={"offset": offset})

    # --- workflows and runs -----------------------------------------------------------------------

    @staticmethod
    def apply_workflow(spec: WorkflowSpec) -> Call[AppliedWorkflow]:
        body = spec.model_dump(mode="json", exclude_none=True)
        return Call("POST", "/workflows", _model("AppliedWorkflow"), body=body)

    @staticmethod
    def list_workflows() -> Call[WorkflowList]:
        return Call("GET", "/workflows", _model("WorkflowList"))

    @staticmethod
    def get_workflow(ref: str, version: int | None = None) -> Call[WorkflowInfo]:
        return Call("GET", f"/workflows/{_ref(ref)}", _model("WorkflowInfo"), params=_params(version=version))

    @staticmethod
    def execute_workflow(ref: str, params: dict[str, Any], version: int | None = None) -> Call[Run]:
        body = {"params": params, **_params(version=version)}
        return Call("POST", f"/workflows/{_ref(ref)}/execute", _model("Run"), body=body)

    @staticmethod
    def list_runs(
        status: str | None = None, workflow: str | None = None, limit: int | None = None
    ) -> Call[RunList]:
        params = _params(status=status, workflow=workflow, limit=limit)
        return Call("GET", "/runs", _model("RunList"), params=params)

    @staticmethod
    def get_run(ref: str, wait: float | None = None, since: int | None = None) -> Call[Run]:
        """With `wait`: hived answers once the run has ended, or after `wait` s; with `since` too (a
        revision), as soon as the run's revision is another (the run or a step changed)."""
        return Call("GET", f"/runs/{_ref(ref)}", _model("Run"), params=_params(wait=wait, since=since))

    @staticmethod
    def cancel_run(ref: str) -> Call[Run]:
        return Call("POST", f"/runs/{_ref(ref)}/cancel", _model("Run"))

    @staticmethod
    def rerun_run(ref: str, from_step: str | None = None) -> Call[Run]:
        return Call("POST", f"/runs/{_ref(ref)}/rerun", _model("Run"), body=_params(from_step=from_step))

    @staticmethod
    def resume_run(ref: str, add_budget: float | None = None, add_tokens: int | None = None) -> Call[Run]:
        body = _params(add_budget=add_budget, add_tokens=add_tokens)
        return Call("POST", f"/runs/{_ref(ref)}/resume", _model("Run"), body=body)

    @staticmethod
    def usage(by: str = "agent", since: str | None = None) -> Call[UsageReport]:
        return Call("GET", "/usage", _model("UsageReport"), params=_params(by=by, since=since))

    @staticmethod
    def decide_step(
        ref: str, step: str, approve: bool, by: str | None, comment: str | None, rework: str | None = None
    ) -> Call[Run]:
        verb = "approve" if approve else "reject"
        body = _params(by=by, comment=comment, rework=rework)
        return Call("POST", f"/runs/{_ref(ref)}/steps/{_ref(step)}/{verb}", _model("Run"), body=body)

    @staticmethod
    def signal_run(ref: str, name: str, data: Any) -> Call[Run]:
        return Call("POST", f"/runs/{_ref(ref)}/signals/{_ref(name)}", _model("Run"), body={"data": data})

    @staticmethod
    def run_context(ref: str) -> Call[list[ContextEntry]]:
        return Call("GET", f"/runs/{_ref(ref)}/context", _entries)

    @staticmethod
    def get_context(ref: str, key: str) -> Call[ContextEntry]:
        return Call("GET", f"/runs/{_ref(ref)}/context/{_ref(key)}", _model("ContextEntry"))

    @staticmethod
    def put_context(ref: str, key: str, value: Any, expected_version: int | None) -> Call[ContextEntry]:
        body = {"value": value, **_params(expected_version=expected_version)}
        return Call("PUT", f"/runs/{_ref(ref)}/context/{_ref(key)}", _model("ContextEntry"), body=body)

    # --- limits (flow control) ------------------------------------------------------------------

    @staticmethod
    def apply_limit(spec: LimitSpec) -> Call[AppliedLimit]:
        body = spec.model_dump(mode="json", exclude_none=True)
        return Call("PUT", f"/limits/{_ref(spec.name)}", _model("AppliedLimit"), body=body)

    @staticmethod
    def list_limits() -> Call[LimitList]:
        return Call("GET", "/limits", _model("LimitList"))

    @staticmethod
    def get_limit(name: str) -> Call[LimitInfo]:
        return Call("GET", f"/limits/{_ref(name)}", _model("LimitInfo"))

    @staticmethod
    def delete_limit(name: str) -> Call[LimitInfo]:
        return Call("DELETE", f"/limits/{_ref(name)}", _model("LimitInfo"))

    # --- tokens (admin) ---------------------------------------------------------------------------

    @staticmethod
    def create_token(scope: str, agent: str | None = None, name: str | None = None) -> Call[Json]:
        return Call("POST", "/tokens", _json, body={"scope": scope, **_params(agent=agent, name=name)})

    @staticmethod
    def list_tokens() -> Call[Json]:
        return Call("GET", "/tokens", _json)

    @staticmethod
    def revoke_token(ref: str) -> Call[Json]:
        return Call("DELETE", f"/tokens/{_ref(ref)}", _json)
