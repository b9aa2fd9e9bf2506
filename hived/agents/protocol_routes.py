"""The agent protocol: register, heartbeat, long-poll for work (carrying results), complete, fail."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from hived.errors import Conflict, Forbidden
from hived.http.deps import Protocol, TerminalsDep
from hived.model.schemas import (
    AttemptResult,
    HeartbeatRequest,
    HeartbeatResponse,
    RegisterRequest,
    RegisterResponse,
    ResultAck,
    WorkRequest,
    WorkResponse,
)
from hived.model.terminals import TerminalReport

router = APIRouter(tags=["agent protocol"])


class Completion(BaseModel):
    agent_id: str
    attempt: int
    lease: int
    result: dict | None = None
    error: str | None = None
    reason: str | None = None
    output: str | None = None


@router.post("/agents/register", response_model=RegisterResponse)
async def register(req: RegisterRequest, protocol: Protocol, request: Request) -> RegisterResponse:
    token = getattr(request.state, "token", None)  # set by the TCP listener's gate
    if token is not None and token.agent is not None:
        name = req.spec.name if req.spec else protocol.agents.name_of(req.agent_id or "")
        if name != token.agent:
            raise Forbidden(f"this token registers only agent {token.agent!r}")
    return await protocol.register(req)


@router.post("/agents/{agent_id}/heartbeat", response_model=HeartbeatResponse)
async def heartbeat(agent_id: str, req: HeartbeatRequest, protocol: Protocol) -> HeartbeatResponse:
    return await protocol.heartbeat(agent_id, req)


@router.post("/agents/{agent_id}/work", response_model=WorkResponse)
async def work(agent_id: str, req: WorkRequest, protocol: Protocol) -> WorkResponse:
    """Report finished attempts, then wait up to `wait` seconds for new leases."""
    return await protocol.work(agent_id, req)


async def _finish(protocol: Protocol, task_id: str, body: Completion, ok: bool) -> ResultAck:
    result = AttemptResult(
        task_id=task_id,
        attempt=body.attempt,
        lease=body.lease,
        ok=ok,
        result=body.result,
        error=body.error,
        reason=body.reason,
        output=body.output,
    )
    [ack] = await protocol.report(body.agent_id, [result])
    if not ack.accepted:
        raise Conflict(f"task {task_id}: result refused ({ack.reason})")
    return ack


@router.post("/tasks/{task_id}/complete", response_model=ResultAck, responses={409: {}})
async def complete(task_id: str, body: Completion, protocol: Protocol) -> ResultAck:
    """Record a successful attempt; 409 when the attempt or lease is stale (fencing)."""
    return await _finish(protocol, task_id, body, ok=True)


@router.post("/tasks/{task_id}/fail", response_model=ResultAck, responses={409: {}})
async def fail(task_id: str, body: Completion, protocol: Protocol) -> ResultAck:
    """Record a failed attempt (it is retried per the task's policy); 409 when stale."""
    return await _finish(protocol, task_id, body, ok=False)


@router.post("/agents/{agent_id}/terminal")
async def terminal(agent_id: str, req: TerminalReport, terminals: TerminalsDep) -> dict:
    """A `tty: true` attempt's session started, waits for input, or runs again."""
    return await terminals.report(agent_id, req)
