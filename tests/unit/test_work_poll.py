"""The agent's long-poll (`POST /agents/{id}/work`) when the agent leaves while its poll waits:
recycled (max_tasks, max_memory), removed or lost. The poll is answered with nothing, not a 500
(it was: the reply took the typed input lines of a channel that was gone)."""

from __future__ import annotations

import asyncio

from hived.model.schemas import WorkRequest
from tests.unit.inprocess import Core, spawn


async def test_a_poll_waiting_when_its_agent_leaves_is_answered_with_nothing(hive: Core) -> None:
    agent = await spawn(hive)
    request = WorkRequest(incarnation=agent.incarnation, slots=1, wait=30)
    poll = asyncio.ensure_future(hive.protocol.work(agent.id, request))
    for _ in range(10):  # the poll reaches its wait
        await asyncio.sleep(0)
    assert not poll.done()
    await hive.dispatcher.agent_gone(agent.id)
    reply = await asyncio.wait_for(poll, 5)
    assert reply.tasks == [] and reply.input == [] and reply.cancel == []
