"""`AsyncClient`: the asyncio twin of `Client` (the TUI, benches): the same methods, awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from hivectl.client.errors import ClientError, RequestTimeout, check_response, transport_errors
from hivectl.client.node_routes import NodeRoutes
from hivectl.client.polling import (
    PATIENCE,
    RUN_FINAL,
    TASK_FINAL,
    Notice,
    Patience,
    Poll,
    Watch,
    resume_after,
)
from hivectl.client.routes import Applied, Call, Json, LogChunk, Routes
from hivectl.client.schedule_routes import ScheduleRoutes
from hivectl.client.sse import Event, SseDecoder
from hivectl.endpoint import Endpoint

if TYPE_CHECKING:  # the models are read by routes.py, which imports them when first used
    from hived.model.limits import AppliedLimit, LimitInfo, LimitList, LimitSpec
    from hived.model.nodes import Node, NodeList
    from hived.model.queue import BulkResult, QueueState
    from hived.model.runs import AppliedWorkflow, ContextEntry, Run, RunList, WorkflowInfo, WorkflowList
    from hived.model.schedules import AppliedSchedule, Fired, ScheduleInfo, ScheduleList, ScheduleSpec
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


class AsyncClient:
    """The asyncio twin of `Client`: the same methods, awaited; `events`, `watch_task` and `watch_run`
    are async iterators. An async context manager."""

    def __init__(
        self, endpoint: Endpoint | None = None, timeout: float = 30.0, notice: Notice | None = None
    ) -> None:
        self.endpoint = endpoint or Endpoint.from_env()
        self.http = httpx.AsyncClient(**self.endpoint.async_client_kwargs(timeout))
        self.notice = notice

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(self, call: Call[T]) -> T:
        with transport_errors(self.endpoint):
            resp = await self.http.request(call.method, call.path, **call.request_kwargs())
        return call.parse(check_response(resp))

    async def poll(self, call: Call[T], patience: float = PATIENCE) -> T:
        """`send` that rides out a restarting hived or database (see `hivectl.client.polling`)."""
        waiting = Patience(patience, self.notice)
        while True:
            try:
                return await self.send(call)
            except ClientError as exc:
                await asyncio.sleep(waiting.retry_in(exc, time.monotonic()))

    async def watch(
        self, call: Call[T], final: Callable[[T], bool], what: str, timeout: float | None
    ) -> AsyncIterator[T]:
        """What `call` reads, each time it is read (more often while it changes), until `final`
        holds: the last one yielded."""
        poll = Poll(what, time.monotonic(), timeout)
        previous = None
        while True:
            current = await self.poll(call)
            yield current
            if final(current):
                return
            changed, previous = current != previous, current
            await asyncio.sleep(poll.next_delay(changed, time.monotonic()))

    def watch_task(self, ref: str, timeout: float | None = None) -> AsyncIterator[TaskDetail]:
        return self.watch(Routes.get_task(ref), lambda t: t.status in TASK_FINAL, f"task {ref}", timeout)

    async def watch_run(
        self, ref: str, timeout: float | None = None, refresh: float | None = None
    ) -> AsyncIterator[Run]:
        """The run now, then each time it or one of its steps changes (hived answers a long-poll the
        moment that happens), until it ends: the last one yielded. With `refresh`, also every
        `refresh` s when nothing changed. Rides out a restarting hived as `poll` does."""
        watch = Watch(Poll(f"run {ref}", time.monotonic(), timeout), refresh)
        run = await self.poll(Routes.get_run(ref))
        yield run
        while run.status not in RUN_FINAL:
            asked = time.monotonic()
            wait = watch.wait(asked)
            current = await self.poll(Routes.get_run(ref, wait, since=run.revision))
            if current != run or refresh is not None:
                yield current
            if current.status not in RUN_FINAL:
                await asyncio.sleep(watch.pause(current == run, asked, wait, time.monotonic()))
            run = current

    async def wait_task(self, ref: str, timeout: float | None = None) -> TaskDetail:
        """The task once it has ended (completed, failed or cancelled); WaitTimeout after `timeout` s.
        Each read is a long-poll that hived answers the moment the task ends."""
        poll = Poll(f"task {ref}", time.monotonic(), timeout)
        while True:
            task = await self.poll(Routes.get_task(ref, poll.long_wait(time.monotonic())))
            if task.status in TASK_FINAL:
                return task

    async def wait_run(self, ref: str, timeout: float | None = None) -> Run:
        """The run once it has ended (succeeded, failed or cancelled); WaitTimeout after `timeout` s.
        Each read is a long-poll that hived answers the moment the run ends."""
        poll = Poll(f"run {ref}", time.monotonic(), timeout)
        while True:
            run = await self.poll(Routes.get_run(ref, poll.long_wait(time.monotonic())))
            if run.status in RUN_FINAL:
                return run

    async def events(
        self, since: int | None = None, follow: bool = True, reconnect: bool = True
    ) -> AsyncIterator[Event]:
        """As `Client.events`: resumed with Last-Event-ID after a drop unless `reconnect=False`."""
        after, waiting = since, Patience(PATIENCE, self.notice)
        while True:
            try:
                async for event in self._event_stream(after, follow, waiting):
                    after = event.id
                    yield event
            except ClientError as exc:
                if not (follow and reconnect):
                    raise
                if not isinstance(exc, RequestTimeout):  # a silent link: reconnect at once
                    await asyncio.sleep(waiting.retry_in(exc, time.monotonic()))
            else:
                if not (follow and reconnect):
                    return
            after = resume_after(after, (await self.poll(Routes.status())).last_event_id)

    async def _event_stream(self, after: int | None, follow: bool, waiting: Patience) -> AsyncIterator[Event]:
        stream = Routes.events(after, follow)
        decoder = SseDecoder()
        with transport_errors(self.endpoint):
            async with self.http.stream(stream.method, stream.path, **stream.request_kwargs()) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                check_response(resp)
                waiting.recovered()
                async for line in resp.aiter_lines():
                    if (event := decoder.feed(line)) is not None:
                        yield event

    # --- one method per route ---------------------------------------------------------------------

    async def health(self) -> Health:
        return await self.send(Routes.health())

    async def status(self) -> Status:
        return await self.send(Routes.status())

    async def spawn_agent(self, spec: AgentSpec) -> Agent:
        return await self.send(Routes.spawn_agent(spec))

    async def apply_agent(self, spec: AgentSpec) -> Applied:
        return await self.send(Routes.apply_agent(spec))

    async def list_agents(
        self, status: str | None = None, type: str | None = None, limit: int | None = None, offset: int = 0
    ) -> AgentList:
        """Without `limit`: every agent, a page at a time (hived's default page, capped at its
        max_page_size: asking for more than that would be refused)."""
        if limit is not None:
            return await self.send(Routes.list_agents(status, type, limit, offset))
        items: list[Agent] = []
        while True:
            got = await self.send(Routes.list_agents(status, type, None, offset + len(items)))
            items += got.items
            if not got.items or offset + len(items) >= got.total:
                return got.__class__(items=items, total=got.total)  # AgentList, not imported here

    async def get_agent(self, ref: str) -> AgentDetail:
        return await self.send(Routes.get_agent(ref))

    async def delete_agent(self, ref: str, drain: bool = False, timeout: float = 60.0) -> Agent:
        return await self.send(Routes.delete_agent(ref, drain, timeout))

    async def restart_agent(self, ref: str) -> Agent:
        return await self.send(Routes.restart_agent(ref))

    async def agent_logs(self, ref: str, offset: int = 0, incarnation: int | None = None) -> LogChunk:
        return await self.send(Routes.agent_logs(ref, offset, incarnation))

    async def register_agent(self, request: RegisterRequest) -> RegisterResponse:
        return await self.send(Routes.register_agent(request))

    async def heartbeat(self, agent_id: str, request: HeartbeatRequest) -> HeartbeatResponse:
        return await self.send(Routes.heartbeat(agent_id, request))

    async def submit_task(self, task: TaskSubmit, wait: float | None = None) -> Task:
        """As `Client.submit_task` (with `wait`: one request, the task once it has ended)."""
        return await self.send(Routes.submit_task(task, wait))

    async def submit_tasks(self, tasks: Sequence[TaskSubmit]) -> TaskList:
        return await self.send(Routes.submit_tasks(tasks))

    async def list_tasks(
        self,
        status: str | None = None,
        type: str | None = None,
        agent: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        run: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> TaskList:
        return await self.send(Routes.list_tasks(status, type, agent, limit, offset, run, labels))

    async def bulk_tasks(self, action: str, filters: dict[str, Any]) -> BulkResult:
        """Cancel or retry the tasks matching `filters` (at most 1,000 a call: see `remaining`)."""
        return await self.send(Routes.bulk_tasks(action, filters))

    async def pause_queue(self, selector: dict[str, Any]) -> QueueState:
        return await self.send(Routes.pause_queue(selector))

    async def resume_queue(self, selector: dict[str, Any]) -> QueueState:
        return await self.send(Routes.resume_queue(selector))

    async def cordon_agent(self, ref: str, cordoned: bool = True) -> Agent:
        return await self.send(Routes.cordon_agent(ref, cordoned))

    async def get_task(self, ref: str) -> TaskDetail:
        return await self.send(Routes.get_task(ref))

    async def cancel_task(self, ref: str) -> Task:
        return await self.send(Routes.cancel_task(ref))

    async def retry_task(self, ref: str) -> Task:
        return await self.send(Routes.retry_task(ref))

    async def task_logs(self, ref: str, offset: int = 0) -> LogChunk:
        return await self.send(Routes.task_logs(ref, offset))

    async def apply_workflow(self, spec: WorkflowSpec) -> AppliedWorkflow:
        return await self.send(Routes.apply_workflow(spec))

    async def list_workflows(self) -> WorkflowList:
        return await self.send(Routes.list_workflows())

    async def get_workflow(self, ref: str, version: int | None = None) -> WorkflowInfo:
        return await self.send(Routes.get_workflow(ref, version))

    async def execute_workflow(self, ref: str, params: dict[str, Any], version: int | None = None) -> Run:
        return await self.send(Routes.execute_workflow(ref, params, version))

    async def list_runs(
        self, status: str | None = None, workflow: str | None = None, limit: int | None = None
    ) -> RunList:
        return await self.send(Routes.list_runs(status, workflow, limit))

    async def get_run(self, ref: str) -> Run:
        return await self.send(Routes.get_run(ref))

    async def cancel_run(self, ref: str) -> Run:
        return await self.send(Routes.cancel_run(ref))

    async def rerun_run(self, ref: str, from_step: str | None = None) -> Run:
        return await self.send(Routes.rerun_run(ref, from_step))

    async def resume_run(
        self, ref: str, add_budget: float | None = None, add_tokens: int | None = None
    ) -> Run:
        """Resume a run a budget paused, its budget raised first (409 while it would still be over)."""
        return await self.send(Routes.resume_run(ref, add_budget, add_tokens))

    async def usage(self, by: str = "agent", since: str | None = None) -> UsageReport:
        """What handlers reported they spent, summed per agent, workflow, run, model, day or task."""
        return await self.send(Routes.usage(by, since))

    async def approve_step(
        self, ref: str, step: str, by: str | None = None, comment: str | None = None
    ) -> Run:
        return await self.send(Routes.decide_step(ref, step, True, by, comment))

    async def reject_step(
        self,
        ref: str,
        step: str,
        by: str | None = None,
        comment: str | None = None,
        rework: str | None = None,
    ) -> Run:
        return await self.send(Routes.decide_step(ref, step, False, by, comment, rework))

    async def signal_run(self, ref: str, name: str, data: Any = None) -> Run:
        return await self.send(Routes.signal_run(ref, name, data))

    async def run_context(self, ref: str) -> list[ContextEntry]:
        return await self.send(Routes.run_context(ref))

    async def get_context(self, ref: str, key: str) -> ContextEntry:
        return await self.send(Routes.get_context(ref, key))

    async def put_context(
        self, ref: str, key: str, value: Any, expected_version: int | None = None
    ) -> ContextEntry:
        return await self.send(Routes.put_context(ref, key, value, expected_version))

    async def apply_limit(self, spec: LimitSpec) -> AppliedLimit:
        return await self.send(Routes.apply_limit(spec))

    async def list_limits(self) -> LimitList:
        return await self.send(Routes.list_limits())

    async def get_limit(self, name: str) -> LimitInfo:
        return await self.send(Routes.get_limit(name))

    async def delete_limit(self, name: str) -> LimitInfo:
        return await self.send(Routes.delete_limit(name))

    async def apply_schedule(self, spec: ScheduleSpec) -> AppliedSchedule:
        return await self.send(ScheduleRoutes.apply_schedule(spec))

    async def list_schedules(self) -> ScheduleList:
        return await self.send(ScheduleRoutes.list_schedules())

    async def get_schedule(self, name: str) -> ScheduleInfo:
        return await self.send(ScheduleRoutes.get_schedule(name))

    async def pause_schedule(self, name: str, paused: bool = True) -> ScheduleInfo:
        return await self.send(ScheduleRoutes.schedule_verb(name, "pause" if paused else "resume"))

    async def trigger_schedule(self, name: str) -> Fired:
        return await self.send(ScheduleRoutes.trigger_schedule(name))

    async def delete_schedule(self, name: str) -> ScheduleInfo:
        return await self.send(ScheduleRoutes.delete_schedule(name))

    async def create_token(self, scope: str, agent: str | None = None, name: str | None = None) -> Json:
        return await self.send(Routes.create_token(scope, agent, name))

    async def list_tokens(self) -> Json:
        return await self.send(Routes.list_tokens())

    async def revoke_token(self, ref: str) -> Json:
        return await self.send(Routes.revoke_token(ref))

    # --- nodes (several hived on one PostgreSQL) ---------------------------------------------------

    async def list_nodes(self) -> NodeList:
        return await self.send(NodeRoutes.list_nodes())

    async def get_node(self, name: str) -> Node:
        return await self.send(NodeRoutes.get_node(name))

    async def node_verb(self, name: str, verb: str) -> Node:
        return await self.send(NodeRoutes.node_verb(name, verb))
