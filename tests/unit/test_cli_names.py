"""hivectl's task views name the agents a task names: each read alone when they are few (a fleet of
hundreds is not listed for one name), every agent listed once when they are many; an agent since
removed keeps its id."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from hivectl.cli.names import FEW_AGENTS, names_of
from hivectl.client import ApiError
from hived.model.tasks import Attempt, TaskDetail

NOW = datetime(2026, 12, 3, tzinfo=UTC)


class Agents:
    """The part of the client that names_of uses, counting its requests."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.reads: list[str] = []

    def get_agent(self, ref: str) -> Any:
        self.reads.append(f"get {ref}")
        if ref not in self.names:
            raise ApiError(404, f"agent {ref!r} not found")
        return SimpleNamespace(id=ref, name=self.names[ref])

    def list_agents(self) -> Any:
        self.reads.append("list")
        return SimpleNamespace(items=[SimpleNamespace(id=i, name=n) for i, n in self.names.items()])


def task(agent_id: str | None, attempts: list[str | None]) -> TaskDetail:
    history = [Attempt(number=n + 1, agent_id=a, started_at=NOW) for n, a in enumerate(attempts)]
    fields: dict[str, Any] = {"id": "t1", "type": "t", "status": "completed", "priority": 5, "requires": []}
    fields |= {"payload": {}, "agent_id": agent_id, "attempts": len(attempts), "max_attempts": 3}
    fields |= {"result": None, "error": None, "created_at": NOW, "started_at": None, "completed_at": None}
    return TaskDetail(**fields, attempt_history=history)


MANY = [f"a{n}" for n in range(FEW_AGENTS + 1)]


@pytest.mark.parametrize(
    ("shown", "fleet", "names", "reads"),
    [
        (task(None, []), {"a1": "one"}, {}, []),  # pending, never run: nothing to read
        (task("a1", ["a1"]), {"a1": "one", "a2": "two"}, {"a1": "one"}, ["get a1"]),
        (
            task("a2", ["a1", "a2"]),
            {"a1": "one", "a2": "two"},
            {"a1": "one", "a2": "two"},
            ["get a1", "get a2"],
        ),
        (task("a2", ["gone", "a2"]), {"a2": "two"}, {"a2": "two"}, ["get a2", "get gone"]),  # removed: its id
        (task(None, MANY), {a: a.upper() for a in MANY}, {a: a.upper() for a in MANY}, ["list"]),
    ],
)
def test_the_agents_a_task_names(
    shown: TaskDetail, fleet: dict[str, str], names: dict[str, str], reads: list[str]
) -> None:
    agents = Agents(fleet)
    assert names_of(agents, shown) == names  # type: ignore[arg-type]
    assert agents.reads == reads


def test_an_error_other_than_not_found_is_not_hidden() -> None:
    class Broken(Agents):
        def get_agent(self, ref: str) -> Any:
            raise ApiError(503, "database unavailable")

    with pytest.raises(ApiError, match="database unavailable"):
        names_of(Broken({}), task("a1", ["a1"]))  # type: ignore[arg-type]
