"""Built-in python handlers, for tests, benchmarks and examples (`hivectl.agent.builtin:echo`)."""

from __future__ import annotations

import asyncio
import random
from typing import Any


def noop(payload: dict[str, Any]) -> dict[str, Any]:
    return {}


def echo(payload: dict[str, Any]) -> dict[str, Any]:
    return payload


def spend(payload: dict[str, Any]) -> dict[str, Any]:
    """Reports spend (benchmarks and tests of usage): the increment `increment` while it runs (as a
    `::hive-usage` line would), and `usage` in its result."""
    from hivectl.agent.usage import report_usage

    if payload.get("increment"):
        report_usage(**payload["increment"])
    return {"usage": payload["usage"]} if payload.get("usage") else {}


async def sleep(payload: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(float(payload.get("seconds", 1)))
    return {"slept": payload.get("seconds", 1)}


def fail(payload: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError(payload.get("message", "failed"))


def flaky(payload: dict[str, Any]) -> dict[str, Any]:
    """Fails with probability `fail_rate` (benchmarks of retries)."""
    if random.random() < float(payload.get("fail_rate", 0.1)):
        raise RuntimeError("flaky failure")
    return {}


async def act(payload: dict[str, Any]) -> Any:
    """Does what the payload says (tests and examples of workflows): waits `sleep` seconds, fails
    with the message `fail`, then returns `result` (the payload itself when there is none)."""
    await asyncio.sleep(float(payload.get("sleep", 0)))
    if payload.get("fail"):
        raise RuntimeError(str(payload["fail"]))
    return payload.get("result", payload)
