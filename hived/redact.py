"""Secrets never reach hived's logs or outputs: agent `env` values named in `secret_env`, and API
tokens. Values are remembered as agents are defined; the log filter and the agent views replace them
with `***`. (They are kept in the database, which is private to hived's user, and given to the
agent's processes, which need them.)"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"
MIN_SECRET = 4  # shorter values would mask ordinary words

_secrets: set[str] = set()
# Tokens hived has not seen (a wrong one, another service's) are masked by their shape.
HEADER = re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+|basic\s+)?[^\s\"',;}]+")
BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{4,}")


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


def scrub(value: Any) -> Any:
    """A JSON-like value with secret strings masked (for events and API errors)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value
