"""Running one attempt with the agent's handler, as DESIGN.md says.

exec: one process per task in its own process group, never through a shell; the payload is JSON
on stdin; a JSON object on stdout is the result, else the tails of stdout and stderr. python: a
function called with the payload in the agent process (sync ones in a thread)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TAIL = 4096
OUTPUT_LIMIT = 64 * 1024


@dataclass
class Outcome:
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    reason: str | None = None
    output: str = ""


@dataclass
class OutputBuffer:
    """Interleaved stdout+stderr of an attempt, keeping the newest `limit` characters."""

    limit: int = OUTPUT_LIMIT
    parts: list[str] = field(default_factory=list)
    size: int = 0
    last_activity: float = field(default_factory=time.monotonic)

    def add(self, text: str) -> None:
        self.last_activity = time.monotonic()
        self.parts.append(text)
        self.size += len(text)
        if self.size > 2 * self.limit:
            self.parts = [self.text()]
            self.size = len(self.parts[0])

    def text(self) -> str:
        return "".join(self.parts)[-self.limit :]


def tail(text: str, limit: int = TAIL) -> str:
    return text[-limit:]


class ExecHandler:
    def __init__(self, argv: list[str], workdir: str, env: dict[str, str]) -> None:
        self.argv = argv
        self.workdir = workdir
        self.env = env

    async def run(
        self,
        task_id: str,
        task_type: str,
        attempt: int,
        payload: dict[str, Any],
        timeout: float | None,
        stall_timeout: float | None,
        extra_env: dict[str, str],
        cancel: asyncio.Event,
    ) -> Outcome:
        env = {
            **os.environ,
            **self.env,
            **extra_env,
            "HIVE_TASK_ID": task_id,
            "HIVE_TASK_TYPE": task_type,
            "HIVE_ATTEMPT": str(attempt),
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
            )
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            return Outcome(
                False, error=f"cannot start {self.argv[0]!r}: {exc.strerror or exc}", reason="error"
            )
        output = OutputBuffer()
        stdout: list[str] = []
        stderr: list[str] = []

        async def pump(stream: asyncio.StreamReader, sink: list[str]) -> None:
            while chunk := await stream.read(65536):
                text = chunk.decode("utf-8", "replace")
                sink.append(text)
                output.add(text)

        async def feed() -> None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(json.dumps(payload).encode())
                await proc.stdin.drain()
                proc.stdin.close()

        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            asyncio.create_task(pump(proc.stdout, stdout)),
            asyncio.create_task(pump(proc.stderr, stderr)),
            asyncio.create_task(feed()),
        ]
        waiter = asyncio.create_task(proc.wait())
        cancelled = asyncio.create_task(cancel.wait())
        started = time.monotonic()
        killed_for: str | None = None
        try:
            # proc.returncode, not proc.wait(): asyncio's wait() also waits for the pipes, which a
            # grandchild left behind would hold open.
            while proc.returncode is None and not waiter.done():
                await asyncio.wait({waiter, cancelled}, timeout=0.1, return_when=asyncio.FIRST_COMPLETED)
                if proc.returncode is not None or waiter.done():
                    break
                now = time.monotonic()
                if cancel.is_set():
                    killed_for = "cancelled"
                elif timeout is not None and now - started > timeout:
                    killed_for = "timeout"
                elif stall_timeout is not None and now - output.last_activity > stall_timeout:
                    killed_for = "stalled"
                if killed_for:
                    break
        finally:
            cancelled.cancel()
            kill_group(proc.pid)  # the handler if it still runs, and whatever it left behind
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), timeout=5)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pumps, return_exceptions=True), timeout=2)
        out, err = "".join(stdout), "".join(stderr)
        tails = {"exit_code": proc.returncode, "stdout": tail(out), "stderr": tail(err)}
        if killed_for == "timeout":
            return Outcome(False, tails, f"timed out after {timeout:g}s", "timeout", output.text())
        if killed_for == "stalled":
            return Outcome(False, tails, f"no output for {stall_timeout:g}s", "stalled", output.text())
        if killed_for == "cancelled":
            return Outcome(False, tails, "cancelled", "cancelled", output.text())
        code = proc.returncode or 0
        if code != 0:
            if code < 0:
                message = f"killed by signal {-code} ({signal.Signals(-code).name})"
            else:
                last = next((line for line in reversed(err.splitlines()) if line.strip()), "")
                message = f"exit code {code}" + (f": {last.strip()[:300]}" if last else "")
            return Outcome(False, tails, message, "error", output.text())
        try:
            parsed = json.loads(out.strip()) if out.strip() else None
        except ValueError:
            parsed = None
        return Outcome(True, parsed if isinstance(parsed, dict) else tails, output=output.text())


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class PythonHandler:
    def __init__(self, target: str, workdir: str) -> None:
        if workdir not in sys.path:
            sys.path.insert(0, workdir)
        module_name, _, attr = target.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"{target} is not callable")
        self.func: Callable[..., Any] = obj
        self.target = target

    async def run(
        self,
        task_id: str,
        task_type: str,
        attempt: int,
        payload: dict[str, Any],
        timeout: float | None,
        stall_timeout: float | None,
        extra_env: dict[str, str],
        cancel: asyncio.Event,
    ) -> Outcome:
        if inspect.iscoroutinefunction(self.func):
            call: asyncio.Future[Any] = asyncio.ensure_future(self.func(payload))
        else:
            call = asyncio.ensure_future(asyncio.to_thread(self.func, payload))
        cancelled = asyncio.create_task(cancel.wait())
        try:
            done, _ = await asyncio.wait(
                {call, cancelled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            cancelled.cancel()
        if call not in done:
            call.cancel()  # a sync function in its thread runs on; its result is dropped
            if cancel.is_set():
                return Outcome(False, error="cancelled", reason="cancelled")
            return Outcome(False, error=f"timed out after {timeout:g}s", reason="timeout")
        try:
            value = call.result()
        except Exception as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}", reason="error")
        result = {} if value is None else value if isinstance(value, dict) else {"value": value}
        try:
            json.dumps(result)
        except (TypeError, ValueError) as exc:
            return Outcome(False, error=f"result is not JSON: {exc}", reason="error")
        return Outcome(True, result)


Handler = ExecHandler | PythonHandler


def make_handler(spec: dict[str, Any], workdir: str, env: dict[str, str]) -> Handler:
    if spec.get("exec"):
        return ExecHandler(list(spec["exec"]), workdir, env)
    return PythonHandler(str(spec["python"]), workdir)
