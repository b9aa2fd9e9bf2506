"""`python: "package.module:function"`: a function called in the agent process with the payload.

Async functions are awaited on the agent's loop. Sync functions run in daemon threads that never
make a call wait (hivectl/agent/threads.py), not in the loop's default executor: a call abandoned at
its timeout may run on, and it must neither take a slot from the next attempt nor keep the agent from
exiting.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

from hivectl.agent.handlers import (
    ERROR,
    INTERRUPTED,
    TIMEOUT,
    AttemptOutcome,
    StopRequest,
    exception_outcome,
    python_outcome,
    stop_message,
)
from hivectl.agent.threads import DaemonThreads
from hivectl.agent.wire import Lease

ASYNC_CANCEL_GRACE = 1.0  # how long a cancelled coroutine may take to unwind
THREADS = DaemonThreads()


def load_function(target: str, workdir: str | None = None, pythonpath: str = "") -> Callable[..., Any]:
    """Import `package.module:function` (the attribute may be dotted: `mod:Class.method`), with the
    workdir first on sys.path so a module next to the agent's work is found, then the entries of the
    agent's own `env: {PYTHONPATH: ...}` (the agent process started before it was set: Python read
    PYTHONPATH at its start, from hived's environment)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"python handler {target!r} must look like package.module:function")
    entries = [workdir] if workdir else []
    entries += [os.path.abspath(os.path.join(workdir or "", p)) for p in pythonpath.split(os.pathsep) if p]
    for entry in reversed(entries):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    return obj  # type: ignore[no-any-return]


def _is_async(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(type(func).__call__)


class _Exited(Exception):
    """SystemExit or KeyboardInterrupt raised by a handler: it fails the attempt, not the agent."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


async def _guarded(func: Callable[..., Any], payload: dict[str, Any]) -> Any:
    return await _guarded_await(func(payload))


async def _guarded_await(awaitable: Any) -> Any:
    try:
        return await awaitable
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _Exited(exc) from exc


class PythonHandler:
    def __init__(self, target: str, workdir: str | None = None, pythonpath: str = "") -> None:
        self.target = target
        self.func = load_function(target, workdir, pythonpath)
        self.is_async = _is_async(self.func)

    async def run(self, lease: Lease, stop: StopRequest) -> AttemptOutcome:
        timeout = lease.timeout if lease.timeout and lease.timeout > 0 else None
        call: asyncio.Future[Any]
        if self.is_async:
            call = asyncio.ensure_future(_guarded(self.func, lease.payload))
        else:
            call = _call_in_thread(self.func, lease.payload)
        stop_asked = stop.asked()
        abandoned = False
        try:
            await asyncio.wait({call, stop_asked}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not call.done():
                abandoned = True
                await self._abandon(call)
        if abandoned:
            if stop.is_set():
                reason = stop.reason or INTERRUPTED
                return AttemptOutcome.failed(reason, stop_message(reason))
            return AttemptOutcome.failed(TIMEOUT, f"timed out after {timeout:g}s")
        if call.cancelled():
            return AttemptOutcome.failed(ERROR, "CancelledError: the handler cancelled itself")
        exc = call.exception()
        if exc is not None:
            return exception_outcome(_unwrap(exc))
        value = call.result()
        if inspect.isawaitable(value):  # a sync callable that handed back a coroutine
            try:
                value = await asyncio.wait_for(_guarded_await(value), timeout=timeout)
            except TimeoutError:
                return AttemptOutcome.failed(TIMEOUT, f"timed out after {timeout:g}s")
            except Exception as exc:  # noqa: BLE001 - any failure of the user's code is the attempt's
                return exception_outcome(_unwrap(exc))
        return python_outcome(value)

    async def _abandon(self, call: asyncio.Future[Any]) -> None:
        """Cancel a coroutine (and give it a moment to unwind); a thread cannot be stopped, so its
        eventual result is dropped."""
        call.cancel()
        if self.is_async:
            await asyncio.wait({call}, timeout=ASYNC_CANCEL_GRACE)


def _unwrap(exc: BaseException) -> BaseException:
    return exc.original if isinstance(exc, _Exited) else exc


def _call_in_thread(func: Callable[..., Any], payload: dict[str, Any]) -> asyncio.Future[Any]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(value: Any, exc: BaseException | None) -> None:
        if future.done():  # abandoned at a timeout or a cancel
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)

    def body() -> None:
        try:
            value = context.run(func, payload)
        except BaseException as exc:  # noqa: BLE001 - SystemExit in a handler fails the attempt only
            _post(loop, settle, None, exc)
        else:
            _post(loop, settle, value, None)

    THREADS.submit(body)
    return future


def _post(loop: asyncio.AbstractEventLoop, settle: Callable[..., None], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(settle, *args)
    except RuntimeError:  # the loop is closed: the agent has exited
        pass
