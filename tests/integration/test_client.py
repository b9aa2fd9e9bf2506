"""hivectl's client library against a real hived: the sync and async clients return the wire schemas,
`wait_task` and `wait_run` end with the object (and ride out a kill -9 of hived), `events()` resumes a
dropped stream with Last-Event-ID (nothing lost, nothing twice) and picks up a restarted hived."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from hivectl.client import ApiError, AsyncClient, Client, DaemonUnreachable, Event, WaitTimeout
from hivectl.client.polling import Patience
from hivectl.endpoint import Endpoint
from hived.model.schemas import AgentSpec, TaskDetail, TaskSubmit
from hived.model.workflow import WorkflowSpec
from tests.helpers import Hived, wait_for

ACT = AgentSpec.model_validate(
    {
        "name": "actor",
        "capabilities": ["act"],
        "max_concurrency": 4,
        "handler": {"python": "hivectl.agent.builtin:act"},
    }
)
CHAIN = WorkflowSpec.model_validate(
    {
        "name": "two",
        "steps": [
            {"id": "a", "type": "act", "requires": ["act"], "payload": {"result": {"v": 3}}},
            {
                "id": "b",
                "type": "act",
                "requires": ["act"],
                "needs": ["a"],
                "payload": {"got": "${{ steps.a.result.v }}"},
            },
        ],
    }
)


def act(**payload: Any) -> TaskSubmit:
    return TaskSubmit(type="act", requires=["act"], payload=payload)


def unroutable(type: str = "lonely") -> TaskSubmit:
    return TaskSubmit(type=type, requires=["nobody"])


def test_sync_client_runs_a_task_and_a_workflow_to_their_end(hived: Hived) -> None:
    with Client(Endpoint(socket=hived.socket)) as client:
        agent = client.spawn_agent(ACT)
        assert agent.name == "actor" and client.get_agent("actor").id == agent.id
        task = client.submit_task(act(result={"ok": True}))
        done = client.wait_task(task.id[:8], timeout=30)  # a unique prefix will do
        assert isinstance(done, TaskDetail)
        assert (done.id, done.status, done.result) == (task.id, "completed", {"ok": True})
        assert client.list_tasks(status="completed").total == 1
        one = client.submit_task(act(result={"at": "once"}), wait=30)  # submit and outcome: one request
        assert (one.status, one.result) == ("completed", {"at": "once"})
        assert client.submit_task(unroutable(), wait=0.2).status == "pending"  # the wait ran out

        assert client.apply_workflow(CHAIN).action == "created"
        run = client.wait_run(client.execute_workflow("two", {}).id, timeout=30)
        assert run.status == "succeeded" and run.steps[1].result == {"got": 3}
        with pytest.raises(ApiError) as refused:
            client.get_run("no-such-run")
        assert refused.value.status == 404


def test_wait_gives_up_at_its_timeout(hived: Hived) -> None:
    with Client(Endpoint(socket=hived.socket)) as client:
        task = client.submit_task(unroutable())
        with pytest.raises(WaitTimeout, match=r"did not end within 0.5s"):
            client.wait_task(task.id, timeout=0.5)
        assert client.get_task(task.id).status == "pending"  # the wait ended, not the task


def test_sync_events_resume_a_dropped_stream_with_last_event_id(
    hived: Hived, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first stream breaks right after the event of `first`; meanwhile `second` is submitted. The
    resumed stream must carry on after the last event seen: ids consecutive, none twice."""
    original = Client._event_stream
    resumed_after: list[int | None] = []

    def breaks_once(self: Client, after: int | None, follow: bool, waiting: Patience) -> Iterator[Event]:
        stream = original(self, after, follow, waiting)
        if resumed_after or after is not None:
            resumed_after.append(after)
            yield from stream
            return
        for event in stream:
            yield event
            if event.data.get("task_id") == first.id:
                stream.close()
                self.submit_task(unroutable("second"))
                raise DaemonUnreachable("the stream broke")

    monkeypatch.setattr(Client, "_event_stream", breaks_once)
    with Client(Endpoint(socket=hived.socket)) as client:
        first = client.submit_task(unroutable("first"))
        seen = []
        for event in client.events():
            seen.append(event)
            if event.kind == "task.submitted" and event.data["type"] == "second":
                break
    ids = [event.id for event in seen]
    assert ids == list(range(ids[0], ids[0] + len(ids))), ids  # nothing lost, nothing twice
    first_event = next(e for e in seen if e.data.get("task_id") == first.id)
    assert resumed_after == [first_event.id]


def test_events_without_follow_end_with_the_backlog(hived: Hived) -> None:
    with Client(Endpoint(socket=hived.socket)) as client:
        tasks = client.submit_tasks([unroutable("one"), unroutable("two")])
        events = list(client.events(follow=False))
        late = list(client.events(since=events[-1].id, follow=False))
    submitted = [e.data["task_id"] for e in events if e.kind == "task.submitted"]
    assert submitted == [t.id for t in tasks.items]
    assert late == []


async def test_async_client_waits_and_streams(hived: Hived) -> None:
    async with AsyncClient(Endpoint(socket=hived.socket)) as client:
        await client.spawn_agent(ACT)
        task = await client.submit_task(act(result={"n": 1}))
        done = await client.wait_task(task.id, timeout=30)
        assert (done.status, done.result) == ("completed", {"n": 1})
        one = await client.submit_task(act(result={"n": 2}), wait=30)
        assert (one.status, one.result) == ("completed", {"n": 2})
        await client.apply_workflow(CHAIN)
        run = await client.wait_run((await client.execute_workflow("two", {})).id, timeout=30)
        assert run.status == "succeeded"
        kinds = [e.kind async for e in client.events(follow=False)]
        assert "task.completed" in kinds and "run.succeeded" in kinds, kinds


async def test_async_events_and_wait_ride_out_a_kill_9_of_hived(hived: Hived) -> None:
    """Event ids start again at 1 in a restarted hived: the resumed stream starts from its log's
    beginning (else the new events, with ids below the last seen, would be skipped)."""
    notices: list[str] = []
    async with AsyncClient(Endpoint(socket=hived.socket), notice=notices.append) as client:
        await client.spawn_agent(ACT)
        wait_for(lambda: hived.api("GET", "/agents/actor")["status"] == "active", what="agent active")
        slow = await client.submit_task(act(sleep=2))
        await client.submit_tasks([unroutable("filler")] * 50)  # the last id seen is well above 1
        events = client.events()
        fillers = 0
        while fillers < 50:
            fillers += (await anext(events)).data.get("type") == "filler"
        waiting = asyncio.create_task(client.wait_task(slow.id, timeout=90))
        await asyncio.to_thread(wait_for, lambda: hived.task(slow.id)["status"] == "running", what="running")
        hived.kill9()
        hived.start()
        after = await client.submit_task(unroutable("after-restart"))

        async def until_after() -> Event:
            while (event := await anext(events)).data.get("task_id") != after.id:
                pass
            return event

        assert (await asyncio.wait_for(until_after(), 60)).kind == "task.submitted"
        assert (await waiting).status == "completed"
        await events.aclose()
    assert any("still waiting" in note for note in notices), notices
