"""hive-agent's stdlib dataclasses of the agent protocol (`hivectl.agent.wire`) against hived's pydantic
schemas of it (`hived.model.schemas`): the same field names; what hived requires of a request, the
agent always sends; and any answer hived may send (down to one that leaves every defaulted field
out) the agent reads. A field added on one side only fails here, not in production."""

from __future__ import annotations

import dataclasses
import types
from datetime import UTC, datetime
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from hivectl.agent import wire
from hived.model import schemas

REQUESTS = ["AttemptResult", "WorkRequest", "HeartbeatRequest", "RegisterRequest"]  # agent -> hived
ANSWERS = ["Lease", "ResultAck", "WorkResponse", "HeartbeatResponse", "RegisterResponse"]  # hived -> agent


def pair(name: str) -> tuple[Any, type[BaseModel]]:
    return getattr(wire, name), getattr(schemas, name)


def required_in_dataclass(cls: Any) -> set[str]:
    missing = dataclasses.MISSING
    return {f.name for f in dataclasses.fields(cls) if f.default is missing and f.default_factory is missing}


def required_in_model(model: type[BaseModel]) -> set[str]:
    return {name for name, info in model.model_fields.items() if info.is_required()}


def sample(annotation: Any) -> Any:
    """A valid value of a schema field's type (for the required fields of an answer)."""
    origin = get_origin(annotation)
    if origin is Literal:
        return get_args(annotation)[0]
    if origin in (Union, types.UnionType):
        return None if type(None) in get_args(annotation) else sample(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return minimal(annotation)
    simple = {str: "x", int: 1, float: 1.5, bool: True, datetime: datetime.now(UTC), dict: {}, list: []}
    return simple.get(origin or annotation, None)


def minimal(model: type[BaseModel]) -> BaseModel:
    fields = model.model_fields
    return model(**{name: sample(fields[name].annotation) for name in required_in_model(model)})


@pytest.mark.parametrize("name", REQUESTS + ANSWERS)
def test_the_same_fields_on_both_sides(name: str) -> None:
    agent_side, server_side = pair(name)
    assert {f.name for f in dataclasses.fields(agent_side)} == set(server_side.model_fields)


@pytest.mark.parametrize("name", REQUESTS)
def test_what_hived_requires_of_a_request_the_agent_must_give(name: str) -> None:
    agent_side, server_side = pair(name)
    assert required_in_dataclass(agent_side) == required_in_model(server_side)


@pytest.mark.parametrize("name", REQUESTS)
def test_a_request_as_the_agent_writes_it_is_valid_for_hived(name: str) -> None:
    agent_side, server_side = pair(name)
    model_fields = server_side.model_fields
    values = {field: sample(model_fields[field].annotation) for field in required_in_dataclass(agent_side)}
    if name == "AttemptResult":
        values["ok"] = True
    server_side.model_validate(agent_side(**values).to_json())


@pytest.mark.parametrize("name", ANSWERS)
@pytest.mark.parametrize("exclude_defaults", [False, True], ids=["full", "defaults-left-out"])
def test_the_agent_reads_any_answer_hived_may_give(name: str, exclude_defaults: bool) -> None:
    agent_side, server_side = pair(name)
    answer = minimal(server_side).model_dump(mode="json", exclude_defaults=exclude_defaults)
    read = agent_side.from_json(answer)
    for field in required_in_model(server_side) & {f.name for f in dataclasses.fields(agent_side)}:
        if isinstance(answer[field], str | int | float):
            assert getattr(read, field) == answer[field], field


def test_the_agent_reads_the_agent_it_registered_as() -> None:
    agent = schemas.RegisterResponse.model_fields["agent"].annotation
    assert isinstance(agent, type) and issubclass(agent, BaseModel)
    assert {f.name for f in dataclasses.fields(wire.AgentInfo)} <= required_in_model(agent)
