"""`Client`: the synchronous client of hived (hivectl, scripts, benches)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

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


class Client:
    """Synchronous client; a context manager. `Client()` reaches the default endpoint. `notice` is told
    (one line) when a wait starts riding out an unreachable hived."""

    def __init__(
        self, endpoint: Endpoint | None = None, timeout: float = 30.0, notice: Notice | None = None
    ) -> None:
        self.endpoint = endpoint or Endpoint.from_env()
        self.http: Any
        if self.endpoint.socket is not None:  # the standard library's HTTP: no httpx to import
            from hivectl.client.unix_http import UnixHttp

            self.http = UnixHttp(str(self.endpoint.socket), self.endpoint.headers(), timeout)
        else:
            import httpx

            self.http = httpx.Client(**self.endpoint.client_kwargs(timeout))
        self.notice = notice

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def send(self, call: Call[T]) -> T:
        with transport_errors(self.endpoint):
            resp = self.http.request(call.method, call.path, **call.request_kwargs())
        return call.parse(check_response(resp))

    def poll(self, call: Call[T], patience: float = PATIENCE) -> T:
        """`send` that rides out a restarting hived or database (see `hivectl.client.polling`)."""
        waiting = Patience(patience, self.notice)
        while True:
            try:
                return self.send(call)
            except ClientError as exc:
                time.sleep(waiting.retry_in(exc, time.monotonic()))

    def watch(
        self, call: Call[T], final: Callable[[T], bool], what: str, timeout: float | None
    ) -> Iterator[T]:
        """What `call` reads, each time it is read (more often while it changes), until `final`
        holds: the last one yielded."""
        poll = Poll(what, time.monotonic(), timeout)
        previous = None
        while True:
            current = self.poll(call)
            yield current
            if final(current):
                return
            changed, previous = current != previous, current
            time.sleep(poll.next_delay(changed, time.monotonic()))

    def watch_task(self, ref: str, timeout: float | None = None) -> Iterator[TaskDetail]:
        return self.watch(Routes.get_task(ref), lambda t: t.status in TASK_FINAL, f"task {ref}", timeout)

    def watch_run(
        self, ref: str, timeout: float | None = None, refresh: float | None = None
    ) -> Iterator[Run]:
        """The run now, then each time it or one of its steps changes (hived answers a long-poll the
        moment that happens), until it ends: the last one yielded. With `refresh`, also every
        `refresh` s when nothing changed. Rides out a restarting hived as `poll` does."""
        watch = Watch(Poll(f"run {ref}", time.monotonic(), timeout), refresh)
        run = self.poll(Routes.get_run(ref))
        yield run
        while run.status not in RUN_FINAL:
            asked = time.monotonic()
            wait = watch.wait(asked)
            current = self.poll(Routes.get_run(ref, wait, since=run.revision))
            if current != run or refresh is not None:
                yield current
            if current.status not in RUN_FINAL:
                time.sleep(watch.pause(current == run, asked, wait, time.monotonic()))
            run = current

    def wait_task(self, ref: str, timeout: float | None = None) -> TaskDetail:
        """The task once it has ended (completed, failed or cancelled); WaitTimeout after `timeout` s.
        Each read is a long-poll that hived answers the moment the task ends."""
        poll = Poll(f"task {ref}", time.monotonic(), timeout)
        while True:
            task = self.poll(Routes.get_task(ref, poll.long_wait(time.monotonic())))
            if task.status in TASK_FINAL:
                return task

    def wait_run(self, ref: str, timeout: float | None = None) -> Run:
        """The run once it has ended (succeeded, failed or cancelled); WaitTimeout after `timeout` s.
        Each read is a long-poll that hived answers the moment the run ends."""
        poll = Poll(f"run {ref}", time.monotonic(), timeout)
        while True:
            run = self.poll(Routes.get_run(ref, poll.long_wait(time.monotonic())))
            if run.status in RUN_FINAL:
                return run

    def events(
        self, since: int | None = None, follow: bool = True, reconnect: bool = True
    ) -> Iterator[Event]:
        """hived's events after id `since` (None: its whole backlog); `follow` waits for new ones. A
        dropped stream is resumed with Last-Event-ID (from the start of a restarted hived's log),
        riding out an outage as `poll` does; `reconnect=False` raises instead."""
        after, waiting = since, Patience(PATIENCE, self.notice)
        while True:
            try:
                for event in self._event_stream(after, follow, waiting):
                    after = event.id
                    yield event
            except ClientError as exc:
                if not (follow and reconnect):
                    raise
                if not isinstance(exc, RequestTimeout):  # a silent link: reconnect at once
                    time.sleep(waiting.retry_in(exc, time.monotonic()))
            else:
                if not (follow and reconnect):
                    return
            after = resume_after(after, self.poll(Routes.status()).last_event_id)

    def _event_stream(self, after: int | None, follow: bool, waiting: Patience) -> Iterator[Event]:
        stream = Routes.events(after, follow)
        decoder = SseDecoder()
        with transport_errors(self.endpoint):
            with self.http.stream(stream.method, stream.path, **stream.request_kwargs()) as resp:
                if resp.status_code >= 400:
                    resp.read()
                check_response(resp)
                waiting.recovered()
                for line in resp.iter_lines():
                    if (event := decoder.feed(line)) is not None:
                        yield event

    # --- one method per route ---------------------------------------------------------------------

    def health(self) -> Health:
        return self.send(Routes.health())

    def status(self) -> Status:
        return self.send(Routes.status())

    def spawn_agent(self, spec: AgentSpec) -> Agent:
        return self.send(Routes.spawn_agent(spec))

    def apply_agent(self, spec: AgentSpec) -> Applied:
        return self.send(Routes.apply_agent(spec))

    def list_agents(
        self, status: str | None = None, type: str | None = None, limit: int | None = None, offset: int = 0
    ) -> AgentList:
        """Without `limit`: every agent, a page at a time (hived's default page, capped at its
        max_page_size: asking for more than that would be refused)."""
        if limit is not None:
            return self.send(Routes.list_agents(status, type, limit, offset))
        items: list[Agent] = []
        while True:
            got = self.send(Routes.list_agents(status, type, None, offset + len(items)))
            items += got.items
            if not got.items or offset + len(items) >= got.total:
                return got.__class__(items=items, total=got.total)  # AgentList, not imported here

    def get_agent(self, ref: str) -> AgentDetail:
        return self.send(Routes.get_agent(ref))

    def delete_agent(self, ref: str, drain: bool = False, timeout: float = 60.0) -> Agent:
        return self.send(Routes.delete_agent(ref, drain, timeout))

    def restart_agent(self, ref: str) -> Agent:
        return self.send(Routes.restart_agent(ref))

    def agent_logs(self, ref: str, offset: int = 0, incarnation: int | None = None) -> LogChunk:
        return self.send(Routes.agent_logs(ref, offset, incarnation))

    def register_agent(self, request: RegisterRequest) -> RegisterResponse:
        return self.send(Routes.register_agent(request))

    def heartbeat(self, agent_id: str, request: HeartbeatRequest) -> HeartbeatResponse:
        return self.send(Routes.heartbeat(agent_id, request))

    def submit_task(self, task: TaskSubmit, wait: float | None = None) -> Task:
        """With `wait` (s, at most 60): the task once it has ended, or as it is after `wait` s; one
        request. A connection lost meanwhile leaves the task submitted and its id unknown: give it an
        idempotency_key to submit it again safely (or submit, then `wait_task`, which rides out a
        restarting hived)."""
        return self.send(Routes.submit_task(task, wait))

    def submit_tasks(self, tasks: Sequence[TaskSubmit]) -> TaskList:
        return self.send(Routes.submit_tasks(tasks))

    def list_tasks(
        self,
        status: str | None = None,
        type: str | None = None,
        agent: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        run: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> TaskList:
        return self.send(Routes.list_tasks(status, type, agent, limit, offset, run, labels))

    def bulk_tasks(self, action: str, filters: dict[str, Any]) -> BulkResult:
        """Cancel or retry the tasks matching `filters` (at most 1,000 a call: see `remaining`)."""
        return self.send(Routes.bulk_tasks(action, filters))

    def pause_queue(self, selector: dict[str, Any]) -> QueueState:
        return self.send(Routes.pause_queue(selector))

    def resume_queue(self, selector: dict[str, Any]) -> QueueState:
        return self.send(Routes.resume_queue(selector))

    def cordon_agent(self, ref: str, cordoned: bool = True) -> Agent:
        return self.send(Routes.cordon_agent(ref, cordoned))

    def get_task(self, ref: str) -> TaskDetail:
        return self.send(Routes.get_task(ref))

    def cancel_task(self, ref: str) -> Task:
        return self.send(Routes.cancel_task(ref))

    def retry_task(self, ref: str) -> Task:
        return self.send(Routes.retry_task(ref))

    def task_logs(self, ref: str, offset: int = 0) -> LogChunk:
        return self.send(Routes.task_logs(ref, offset))

    def apply_workflow(self, spec: WorkflowSpec) -> AppliedWorkflow:
        return self.send(Routes.apply_workflow(spec))

    def list_workflows(self) -> WorkflowList:
        return self.send(Routes.list_workflows())

    def get_workflow(self, ref: str, version: int | None = None) -> WorkflowInfo:
        return self.send(Routes.get_workflow(ref, version))

    def execute_workflow(self, ref: str, params: dict[str, Any], version: int | None = None) -> Run:
        return self.send(Routes.execute_workflow(ref, params, version))

    def list_runs(
        self, status: str | None = None, workflow: str | None = None, limit: int | None = None
    ) -> RunList:
        return self.send(Routes.list_runs(status, workflow, limit))

    def get_run(self, ref: str) -> Run:
        return self.send(Routes.get_run(ref))

    def cancel_run(self, ref: str) -> Run:
        return self.send(Routes.cancel_run(ref))

    def rerun_run(self, ref: str, from_step: str | None = None) -> Run:
        return self.send(Routes.rerun_run(ref, from_step))

    def resume_run(self, ref: str, add_budget: float | None = None, add_tokens: int | None = None) -> Run:
        """Resume a run a budget paused, its budget raised first (409 while it would still be over)."""
        return self.send(Routes.resume_run(ref, add_budget, add_tokens))

    def usage(self, by: str = "agent", since: str | None = None) -> UsageReport:
        """What handlers reported they spent, summed per agent, workflow, run, model, day or task."""
        return self.send(Routes.usage(by, since))

    def approve_step(self, ref: str, step: str, by: str | None = None, comment: str | None = None) -> Run:
        return self.send(Routes.decide_step(ref, step, True, by, comment))

    def reject_step(
        self,
        ref: str,
        step: str,
        by: str | None = None,
        comment: str | None = None,
        rework: str | None = None,
    ) -> Run:
        return self.send(Routes.decide_step(ref, step, False, by, comment, rework))

    def signal_run(self, ref: str, name: str, data: Any = None) -> Run:
        return self.send(Routes.signal_run(ref, name, data))

    def run_context(self, ref: str) -> list[ContextEntry]:
        return self.send(Routes.run_context(ref))

    def get_context(self, ref: str, key: str) -> ContextEntry:
        return self.send(Routes.get_context(ref, key))

    def put_context(
        self, ref: str, key: str, value: Any, expected_version: int | None = None
    ) -> ContextEntry:
        return self.send(Routes.put_context(ref, key, value, expected_version))

    def apply_limit(self, spec: LimitSpec) -> AppliedLimit:
        return self.send(Routes.apply_limit(spec))

    def list_limits(self) -> LimitList:
        return self.send(Routes.list_limits())

    def get_limit(self, name: str) -> LimitInfo:
        return self.send(Routes.get_limit(name))

    def delete_limit(self, name: str) -> LimitInfo:
        return self.send(Routes.delete_limit(name))

    def apply_schedule(self, spec: ScheduleSpec) -> AppliedSchedule:
        return self.send(ScheduleRoutes.apply_schedule(spec))

    def list_schedules(self) -> ScheduleList:
        return self.send(ScheduleRoutes.list_schedules())

    def get_schedule(self, name: str) -> ScheduleInfo:
        return self.send(ScheduleRoutes.get_schedule(name))

    def pause_schedule(self, name: str, paused: bool = True) -> ScheduleInfo:
        return self.send(ScheduleRoutes.schedule_verb(name, "pause" if paused else "resume"))

    def trigger_schedule(self, name: str) -> Fired:
        return self.send(ScheduleRoutes.trigger_schedule(name))

    def delete_schedule(self, name: str) -> ScheduleInfo:
        return self.send(ScheduleRoutes.delete_schedule(name))

    def create_token(self, scope: str, agent: str | None = None, name: str | None = None) -> Json:
        return self.send(Routes.create_token(scope, agent, name))

    def list_tokens(self) -> Json:
        return self.send(Routes.list_tokens())

    def revoke_token(self, ref: str) -> Json:
        return self.send(Routes.revoke_token(ref))

    # --- nodes (several hived on one PostgreSQL) ---------------------------------------------------

    def list_nodes(self) -> NodeList:
        return self.send(NodeRoutes.list_nodes())

    def get_node(self, name: str) -> Node:
        return self.send(NodeRoutes.get_node(name))

    def node_verb(self, name: str, verb: str) -> Node:
        return self.send(NodeRoutes.node_verb(name, verb))
