"""The API client of hived, shared by hivectl, the TUI and scripts: one method per route, returning the
wire schemas of `hived.model.schemas`, and failures as exceptions (never an HTTP status to check).

The route table (`Routes`) describes each request once; `Client` (sync) and `AsyncClient` send the
same descriptions, so the two cannot drift apart.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from hivectl.endpoint import Endpoint
from hived.model.schemas import (
    Agent,
    AgentDetail,
    AgentList,
    AgentSpec,
    Health,
    Status,
    Task,
    TaskDetail,
    TaskList,
    TaskSubmit,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


# --- errors ---------------------------------------------------------------------------------------


class ClientError(Exception):
    """Any failure to get an answer from hived; the message is one line, fit for a user."""


class DaemonUnreachable(ClientError):
    """Nothing answers at the endpoint (no socket, connection refused, connection dropped)."""


class NotAuthorized(ClientError):
    """hived refused the token (HTTP 401 or 403)."""


class RequestTimeout(ClientError):
    """hived accepted the connection but did not answer in time."""


class ApiError(ClientError):
    """hived answered with an error (4xx, 5xx): `status` and its one-line `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail if status < 500 else f"hived failed (HTTP {status}): {detail}")
        self.status = status
        self.detail = detail


def error_detail(resp: httpx.Response) -> str:
    """The daemon's `{"detail": ...}` on one line; FastAPI's list of errors becomes `field: msg; ...`."""
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if not isinstance(item, dict):
                parts.append(str(item))
                continue
            loc = [str(p) for p in item.get("loc", [])]
            if loc and loc[0] in ("body", "query", "path", "header"):
                loc = loc[1:]
            msg = str(item.get("msg", "invalid")).removeprefix("Value error, ")
            parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
        detail = "; ".join(parts)
    if not detail:
        detail = resp.text.strip() or resp.reason_phrase or f"HTTP {resp.status_code}"
    return " ".join(str(detail).split())


def check_response(resp: httpx.Response) -> httpx.Response:
    if resp.status_code in (401, 403):
        hint = "" if resp.request.headers.get("Authorization") else " (no token: set HIVE_TOKEN or --token)"
        raise NotAuthorized(f"not authorized: {error_detail(resp)}{hint}")
    if resp.status_code >= 400:
        raise ApiError(resp.status_code, error_detail(resp))
    return resp


def unreachable(endpoint: Endpoint, reason: str) -> DaemonUnreachable:
    hint = (
        "start it with: hivectl daemon start" if endpoint.socket else "is hived listening there (--listen)?"
    )
    return DaemonUnreachable(f"cannot reach hived at {endpoint.describe()} ({reason}); {hint}")


# --- the route table ------------------------------------------------------------------------------


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
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    timeout: float | None = None  # None: the client's default


def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda resp: model.model_validate(resp.json())


def _applied(resp: httpx.Response) -> Applied:
    data = resp.json()
    return Applied(agent=Agent.model_validate(data["agent"]), action=str(data["action"]))


def _log_chunk(offset: int) -> Callable[[httpx.Response], LogChunk]:
    return lambda resp: LogChunk(resp.text, int(resp.headers.get("X-Log-Offset", max(offset, 0))))


def _ref(ref: str) -> str:
    """A path segment: an id, an id prefix or an agent name, quoted so it stays one segment."""
    if not ref.strip():
        raise ClientError("an empty id or name")
    return quote(ref, safe="")


def _params(**params: Any) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


class Routes:
    """Every route of hived the clients use, as `Call` descriptions."""

    @staticmethod
    def health() -> Call[Health]:
        return Call("GET", "/healthz", _model(Health))

    @staticmethod
    def status() -> Call[Status]:
        return Call("GET", "/status", _model(Status))

    @staticmethod
    def spawn_agent(spec: AgentSpec) -> Call[Agent]:
        return Call(
            "POST", "/agents", _model(Agent), body=spec.model_dump(mode="json", exclude_defaults=True)
        )

    @staticmethod
    def apply_agent(spec: AgentSpec) -> Call[Applied]:
        body = {**spec.model_dump(mode="json", exclude_defaults=True), "name": spec.name}
        return Call("PUT", f"/agents/{_ref(spec.name)}", _applied, body=body)

    @staticmethod
    def list_agents(
        status: str | None = None,
        type: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> Call[AgentList]:
        params = _params(status=status, type=type, limit=limit, offset=offset)
        return Call("GET", "/agents", _model(AgentList), params=params)

    @staticmethod
    def get_agent(ref: str) -> Call[AgentDetail]:
        return Call("GET", f"/agents/{_ref(ref)}", _model(AgentDetail))

    @staticmethod
    def delete_agent(ref: str, drain: bool = False, timeout: float = 60.0) -> Call[Agent]:
        params = {"drain": "true" if drain else "false", "timeout": timeout}
        return Call("DELETE", f"/agents/{_ref(ref)}", _model(Agent), params=params, timeout=timeout + 30)

    @staticmethod
    def restart_agent(ref: str) -> Call[Agent]:
        return Call("POST", f"/agents/{_ref(ref)}/restart", _model(Agent), timeout=120.0)

    @staticmethod
    def agent_logs(ref: str, offset: int = 0, incarnation: int | None = None) -> Call[LogChunk]:
        params = _params(offset=offset, incarnation=incarnation)
        return Call("GET", f"/agents/{_ref(ref)}/logs", _log_chunk(offset), params=params)

    @staticmethod
    def submit_task(task: TaskSubmit) -> Call[Task]:
        return Call("POST", "/tasks", _model(Task), body=task.model_dump(mode="json", exclude_defaults=True))

    @staticmethod
    def list_tasks(
        status: str | None = None,
        type: str | None = None,
        agent: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        run: str | None = None,
    ) -> Call[TaskList]:
        params = _params(status=status, type=type, agent=agent, limit=limit, offset=offset, run=run)
        return Call("GET", "/tasks", _model(TaskList), params=params)

    @staticmethod
    def get_task(ref: str) -> Call[TaskDetail]:
        return Call("GET", f"/tasks/{_ref(ref)}", _model(TaskDetail))

    @staticmethod
    def cancel_task(ref: str) -> Call[Task]:
        return Call("PUT", f"/tasks/{_ref(ref)}/cancel", _model(Task))

    @staticmethod
    def retry_task(ref: str) -> Call[Task]:
        return Call("POST", f"/tasks/{_ref(ref)}/retry", _model(Task))

    @staticmethod
    def task_logs(ref: str, offset: int = 0) -> Call[LogChunk]:
        return Call("GET", f"/tasks/{_ref(ref)}/logs", _log_chunk(offset), params={"offset": offset})


@contextlib.contextmanager
def transport_errors(endpoint: Endpoint) -> Iterator[None]:
    """httpx's transport failures as the client's errors (exit 3, or 1 for a read timeout)."""
    # A missing socket is the common case of "not running": say so without a connect attempt.
    if endpoint.socket is not None and not endpoint.socket.exists():
        raise unreachable(endpoint, "no socket")
    try:
        yield
    except httpx.ConnectTimeout:
        raise unreachable(endpoint, "connection timed out") from None
    except httpx.TimeoutException:
        raise RequestTimeout(f"hived at {endpoint.describe()} did not answer in time") from None
    except httpx.TransportError as exc:
        raise unreachable(endpoint, str(exc) or type(exc).__name__) from None


def _request_kwargs(call: Call[Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"params": call.params}
    if call.body is not None:
        kwargs["json"] = call.body
    if call.timeout is not None:
        kwargs["timeout"] = call.timeout
    return kwargs


# --- the clients ----------------------------------------------------------------------------------


PATIENCE = 120.0  # seconds a wait or watch rides out an unreachable hived or database


class Client:
    """Synchronous client; a context manager. `Client()` reaches the default endpoint."""

    def __init__(self, endpoint: Endpoint | None = None, timeout: float = 30.0) -> None:
        self.endpoint = endpoint or Endpoint.from_env()
        self.http = httpx.Client(**self.endpoint.client_kwargs(timeout))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def send(self, call: Call[T]) -> T:
        with transport_errors(self.endpoint):
            resp = self.http.request(call.method, call.path, **_request_kwargs(call))
        return call.parse(check_response(resp))

    def poll(self, call: Call[T], patience: float = PATIENCE) -> T:
        """`send` for wait and watch loops: a hived that is restarting (unreachable) or whose database
        is (503) is waited for, up to `patience` seconds, with one line on stderr; runs and tasks are
        durable, so the wait goes on where it was."""
        deadline: float | None = None
        while True:
            try:
                return self.send(call)
            except (DaemonUnreachable, ApiError) as exc:
                if isinstance(exc, ApiError) and exc.status != 503:
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + patience
                    print(
                        f"hivectl: {exc}; still waiting (up to {patience:.0f}s)", file=sys.stderr, flush=True
                    )
                elif now > deadline:
                    raise
                time.sleep(1.0)

    def health(self) -> Health:
        return self.send(Routes.health())

    def status(self) -> Status:
        return self.send(Routes.status())

    def spawn_agent(self, spec: AgentSpec) -> Agent:
        return self.send(Routes.spawn_agent(spec))

    def apply_agent(self, spec: AgentSpec) -> Applied:
        return self.send(Routes.apply_agent(spec))

    def list_agents(self, status: str | None = None, type: str | None = None, **page: int) -> AgentList:
        """Every agent, a page at a time (hived caps pages at its max_page_size), unless `limit`."""
        if "limit" in page:
            return self.send(Routes.list_agents(status, type, **page))
        items: list[Agent] = []
        while True:
            got = self.send(Routes.list_agents(status, type, offset=len(items)))
            items += got.items
            if not got.items or len(items) >= got.total:
                return AgentList(items=items, total=got.total)

    def get_agent(self, ref: str) -> AgentDetail:
        return self.send(Routes.get_agent(ref))

    def delete_agent(self, ref: str, drain: bool = False, timeout: float = 60.0) -> Agent:
        return self.send(Routes.delete_agent(ref, drain, timeout))

    def restart_agent(self, ref: str) -> Agent:
        return self.send(Routes.restart_agent(ref))

    def agent_logs(self, ref: str, offset: int = 0, incarnation: int | None = None) -> LogChunk:
        return self.send(Routes.agent_logs(ref, offset, incarnation))

    def submit_task(self, task: TaskSubmit) -> Task:
        return self.send(Routes.submit_task(task))

    def list_tasks(
        self, status: str | None = None, type: str | None = None, agent: str | None = None, **page: Any
    ) -> TaskList:
        return self.send(Routes.list_tasks(status, type, agent, **page))

    def get_task(self, ref: str) -> TaskDetail:
        return self.send(Routes.get_task(ref))

    def cancel_task(self, ref: str) -> Task:
        return self.send(Routes.cancel_task(ref))

    def retry_task(self, ref: str) -> Task:
        return self.send(Routes.retry_task(ref))

    def task_logs(self, ref: str, offset: int = 0) -> LogChunk:
        return self.send(Routes.task_logs(ref, offset))


class AsyncClient:
    """The asyncio twin of `Client` (for the TUI): the same methods, awaited."""

    def __init__(self, endpoint: Endpoint | None = None, timeout: float = 30.0) -> None:
        self.endpoint = endpoint or Endpoint.from_env()
        self.http = httpx.AsyncClient(**self.endpoint.async_client_kwargs(timeout))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(self, call: Call[T]) -> T:
        with transport_errors(self.endpoint):
            resp = await self.http.request(call.method, call.path, **_request_kwargs(call))
        return call.parse(check_response(resp))

    async def health(self) -> Health:
        return await self.send(Routes.health())

    async def status(self) -> Status:
        return await self.send(Routes.status())

    async def spawn_agent(self, spec: AgentSpec) -> Agent:
        return await self.send(Routes.spawn_agent(spec))

    async def apply_agent(self, spec: AgentSpec) -> Applied:
        return await self.send(Routes.apply_agent(spec))

    async def list_agents(self, status: str | None = None, type: str | None = None, **page: int) -> AgentList:
        return await self.send(Routes.list_agents(status, type, **page))

    async def get_agent(self, ref: str) -> AgentDetail:
        return await self.send(Routes.get_agent(ref))

    async def delete_agent(self, ref: str, drain: bool = False, timeout: float = 60.0) -> Agent:
        return await self.send(Routes.delete_agent(ref, drain, timeout))

    async def restart_agent(self, ref: str) -> Agent:
        return await self.send(Routes.restart_agent(ref))

    async def agent_logs(self, ref: str, offset: int = 0, incarnation: int | None = None) -> LogChunk:
        return await self.send(Routes.agent_logs(ref, offset, incarnation))

    async def submit_task(self, task: TaskSubmit) -> Task:
        return await self.send(Routes.submit_task(task))

    async def list_tasks(
        self, status: str | None = None, type: str | None = None, agent: str | None = None, **page: Any
    ) -> TaskList:
        return await self.send(Routes.list_tasks(status, type, agent, **page))

    async def get_task(self, ref: str) -> TaskDetail:
        return await self.send(Routes.get_task(ref))

    async def cancel_task(self, ref: str) -> Task:
        return await self.send(Routes.cancel_task(ref))

    async def retry_task(self, ref: str) -> Task:
        return await self.send(Routes.retry_task(ref))

    async def task_logs(self, ref: str, offset: int = 0) -> LogChunk:
        return await self.send(Routes.task_logs(ref, offset))
