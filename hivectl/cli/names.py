"""The names of agents, for the AGENT columns of the views (the tasks and runs name agents by id)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hivectl.client import ApiError

if TYPE_CHECKING:
    from hivectl.client import Client
    from hived.model.tasks import TaskDetail

FEW_AGENTS = 4  # a task that names more agents than this: every agent is listed once instead


def agent_names(cli: Client) -> dict[str, str]:
    """id -> name of every agent, fetched once per command."""
    return {agent.id: agent.name for agent in cli.list_agents().items}


def names_of(cli: Client, task: TaskDetail) -> dict[str, str]:
    """id -> name of the agents one task names (its own, its attempts'), each read alone: a fleet of
    hundreds is not listed to print a name or two. An agent since removed keeps its id."""
    ids = {task.agent_id, *(attempt.agent_id for attempt in task.attempt_history)}
    known = sorted(agent_id for agent_id in ids if agent_id is not None)
    if len(known) > FEW_AGENTS:
        return agent_names(cli)
    names = {}
    for agent_id in known:
        try:
            names[agent_id] = cli.get_agent(agent_id).name
        except ApiError as exc:
            if exc.status != 404:
                raise
    return names
