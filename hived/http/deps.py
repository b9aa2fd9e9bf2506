"""What the routes may call, as FastAPI dependencies: the services built by the composition root
(hived.orchestrator), one per slice, and the daemon's input bounds. Routes call services only."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hived.agents.protocol import AgentProtocol
from hived.agents.service import AgentService
from hived.agents.terminals import Terminals
from hived.auth.tokens import Tokens
from hived.bounds import Limits
from hived.limits.service import LimitsService
from hived.orchestrator import AgentOrchestrator
from hived.schedules.service import SchedulesService
from hived.tasks.attempt_files import AttemptFiles
from hived.tasks.service import TaskService
from hived.usage.budgets import Budgets
from hived.usage.service import UsageService
from hived.workflows.service import WorkflowService


def _orchestrator(request: Request) -> AgentOrchestrator:
    return request.app.state.orchestrator  # type: ignore[no-any-return]


# Dependencies are `async def`: FastAPI runs a plain `def` one in a worker thread, a hop per request.
async def _root(request: Request) -> AgentOrchestrator:
    return _orchestrator(request)


async def _tasks(request: Request) -> TaskService:
    return _orchestrator(request).tasks


async def _agents(request: Request) -> AgentService:
    return _orchestrator(request).fleet


async def _protocol(request: Request) -> AgentProtocol:
    return _orchestrator(request).protocol


async def _workflows(request: Request) -> WorkflowService:
    return _orchestrator(request).workflows


async def _limit_service(request: Request) -> LimitsService:
    return _orchestrator(request).limit_service


async def _schedules(request: Request) -> SchedulesService:
    return _orchestrator(request).schedules


async def _usage(request: Request) -> UsageService:
    return _orchestrator(request).usage


async def _terminals(request: Request) -> Terminals:
    return _orchestrator(request).terminals


async def _budgets(request: Request) -> Budgets:
    return _orchestrator(request).budgets


async def _tokens(request: Request) -> Tokens:
    return _orchestrator(request).tokens


async def _attempt_files(request: Request) -> AttemptFiles:
    return _orchestrator(request).attempt_files


async def _limits(request: Request) -> Limits:
    return _orchestrator(request).limits


Daemon = Annotated[AgentOrchestrator, Depends(_root)]  # daemon-wide: status, readiness, metrics, events
Tasks = Annotated[TaskService, Depends(_tasks)]
Agents = Annotated[AgentService, Depends(_agents)]
Protocol = Annotated[AgentProtocol, Depends(_protocol)]
Workflows = Annotated[WorkflowService, Depends(_workflows)]
TokenStore = Annotated[Tokens, Depends(_tokens)]
Bounds = Annotated[Limits, Depends(_limits)]
LimitsDep = Annotated[LimitsService, Depends(_limit_service)]  # flow control (`kind: Limit`)
SchedulesDep = Annotated[SchedulesService, Depends(_schedules)]  # `kind: Schedule`
UsageDep = Annotated[UsageService, Depends(_usage)]  # what handlers spent
BudgetsDep = Annotated[Budgets, Depends(_budgets)]
TerminalsDep = Annotated[Terminals, Depends(_terminals)]  # interactive attempts (tty: true)
AttemptFilesDep = Annotated[AttemptFiles, Depends(_attempt_files)]  # workspaces' diffs, artifacts
