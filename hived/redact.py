"""Secrets never reach hived's logs or outputs: agent `env` values named in `secret_env`, and API
tokens. `secret_env` values are remembered as agents are defined (they are at least MIN_SECRET
characters: shorter ones are refused when the agent is defined); the log filter, the agent views,
task results and outputs (keys as well as values) and run-context writes replace them with `***`.
API tokens are masked by their shape (`hive_` and 43 URL-safe characters), not by remembered values:
hived keeps only their digests, so after a restart it could not remember them. (secret_env values are
kept in the database, which is private to hived's user, and given to the agent's processes, which need
them.)"""

from __future__ import annotations

import logging
import re
from typing import Any

from hived.model.schemas import MIN_SECRET_CHARS

MASK = "***"
MIN_SECRET = MIN_SECRET_CHARS  # shorter values would mask ordinary words: refused in AgentSpec

_secrets: set[str] = set()
# Tokens hived has not seen (a wrong one, another service's) are masked by their shape.
HEADER = re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+|basic\s+)?[^\s\"',;}]+")
BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{4,}")
# hived's own API tokens (hived/auth/tokens.py: "hive_" + secrets.token_urlsafe(32), 43 characters).
TOKEN = re.compile(r"(?<![A-Za-z0-9_-])hive_[A-Za-z0-9_-]{40,}")


def remember(*values: str) -> None:
    for value in values:
        if value and len(value) >= MIN_SECRET:
            _secrets.add(value)


def remember_env(env: dict[str, str], secret_keys: list[str]) -> None:
    remember(*(env[key] for key in secret_keys if key in env))


def redact(text: str) -> str:
    if not text:
        return text
    lowered = text.lower()
    if "authorization" in lowered:
        text = HEADER.sub(lambda m: m.group(1) + MASK, text)
    if "bearer" in lowered:
        text = BEARER.sub(lambda m: m.group(1) + MASK, text)
    if "hive_" in text:
        text = TOKEN.sub(MASK, text)
    if not _secrets:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):  # a secret inside another: longest first
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def masked_env(env: dict[str, str], secret_keys: list[str]) -> dict[str, str]:
    return {key: MASK if key in secret_keys else value for key, value in env.items()}


class RedactFilter(logging.Filter):
    """On a handler: formats the message once with its arguments, then masks secrets in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def holds_secret(text: str) -> bool:
    return redact(text) != text


def scrub(value: Any) -> Any:
    """A JSON-like value with secret strings masked, in mapping keys as well as in values (for task
    results and outputs, run-context values, events and API errors)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value
