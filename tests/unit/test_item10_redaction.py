"""Item 10 of the hardening issue, the pure parts: scrub masks keys, API tokens are masked by their
shape (no memory needed, so a restart forgets nothing), short secrets are refused, and an agent's
environment is an allow-list of hived's."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from hived import redact
from hived.agents.process import agent_environment
from hived.model.schemas import AgentSpec


def test_item10_scrub_masks_keys_as_well_as_values() -> None:
    redact.remember("sekrit-value-1")
    out = redact.scrub({"sekrit-value-1": {"x-sekrit-value-1": ["sekrit-value-1"]}, "plain": 1})
    assert out == {"***": {"x-***": ["***"]}, "plain": 1}


def test_item10_api_tokens_are_masked_by_shape_without_being_remembered() -> None:
    token = "hive_" + secrets.token_urlsafe(32)
    assert redact.redact(f"token={token}; next") == "token=***; next"
    assert redact.scrub({token: token}) == {"***": "***"}
    # ordinary names starting with hive_ are left alone
    for text in ("hive_agent", "hive_test_5e3a9f0d27c1", "the hive_ prefix"):
        assert redact.redact(text) == text


def test_item10_short_secret_env_value_is_refused_naming_the_key() -> None:
    with pytest.raises(ValidationError, match="secret_env: 'PIN' is shorter than 4 characters") as exc:
        AgentSpec.model_validate({"name": "a", "env": {"PIN": "123"}, "secret_env": ["PIN"]})
    assert "'123'" not in str(exc.value).split("[type=")[0]
    assert AgentSpec.model_validate({"name": "a", "env": {"PIN": "1234"}, "secret_env": ["PIN"]})
    # an agent stored before the rule still loads (it is not refused after an upgrade)
    old = AgentSpec.model_validate(
        {"name": "a", "env": {"PIN": "1"}, "secret_env": ["PIN"]}, context={"stored": True}
    )
    assert old.env == {"PIN": "1"}


def test_item10_agent_environment_is_an_allow_list() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/h",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "HIVE_DB": "postgresql://hive:pw@db/hive",
        "HIVE_TOKEN": "hive_x",
        "HIVE_URL": "http://h:1",
        "PGPASSWORD": "pw",
        "NOTIFY_SOCKET": "/run/systemd/notify",
    }
    env = agent_environment(environ, {"HIVE_AGENT_LOG_MAX_BYTES": "10"}, "id-1", 3, Path("/s/hived.sock"))
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/h",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "HIVE_AGENT_LOG_MAX_BYTES": "10",
        "HIVE_AGENT_ID": "id-1",
        "HIVE_AGENT_INCARNATION": "3",
        "HIVE_SOCKET": "/s/hived.sock",
    }
    no_socket = agent_environment(environ, {}, "id-1", 3, None)
    assert no_socket["HIVE_URL"] == "http://h:1" and "HIVE_TOKEN" not in no_socket
