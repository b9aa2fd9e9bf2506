"""`exec: [argv...]`: one process per attempt, never through a shell.

The process runs in its own session (its own process group) in the agent's workdir. The payload is
JSON on its stdin; stdout and stderr are read as they come, both for the result and for the attempt's
interleaved output. A timeout or a stall kills the whole group at once; a cancel or an agent stop
asks with SIGTERM first and kills after a grace period. Whatever is left of the group when the
process ends is killed too, and so are the attempt's processes that left the group (`setsid`): see
`containment`. A handler cannot leave background processes behind.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable

from hivectl.agent import containment, tty, usage
from hivectl.agent.handlers import (
    ERROR,
    INTERRUPTED,
    OUTPUT_CHARS,
    STALLED,
    TIMEOUT,
    AttemptOutcome,
    StopRequest,
    TailBuffer,
    exec_outcome,
    stop_message,
)
from hivectl.agent.tty_options import TtyOptions
from hivectl.agent.wire import Lease

STDOUT_CHARS = 16 * 1024 * 1024  # a result larger than this is not parsed; its tail is kept
STDERR_CHARS = 64 * 1024
STOP_GRACE = 3.0  # SIGTERM, then SIGKILL after this long
READ_CHUNK = 65536
PIPE_DRAIN = 1.0  # after the exit, how long to wait for pipes held open by escaped processes


class ExecHandler:
    def __init__(
        self,
        argv: list[str],
        workdir: str,
        env: dict[str, str],
        stop_grace: float = STOP_GRACE,
        terminal: TtyOptions | None = None,
    ) -> None:
        if not argv:
            raise ValueError("exec needs a program")
        self.argv = argv
        self.workdir = workdir
        self.env = env
        self.stop_grace = stop_grace
        self.running: dict[str, int | None] = {}  # attempt mark: handler pid, once started
        self.tty = tty.TtyRunner(terminal) if terminal is not None else None  # `tty: true`: in tmux

    def environment(self, lease: Lease) -> dict[str, str]:
        return {
            **os.environ,
            **self.env,
            **lease.env,
            "HIVE_TASK_ID": lease.task_id,
            "HIVE_TASK_TYPE": lease.type,
            "HIVE_ATTEMPT": str(lease.attempt),
            containment.MARK: containment.mark_of(lease.task_id, lease.lease),
        }

    async def run(self, lease: Lease, stop: StopRequest) -> AttemptOutcome:
        mark = containment.mark_of(lease.task_id, lease.lease)
        self.running[mark] = None
        try:
            return await self._run(lease, stop, mark)
        finally:
            self.running.pop(mark, None)
            await containment.sweep(mark, dict(self.running))

    async def send_input(self, task_id: str, text: str) -> bool:
        """Type a line into a `tty: true` attempt; False when this agent runs no such session."""
        return self.tty is not None and await self.tty.send(task_id, text)

    async def _run(self, lease: Lease, stop: StopRequest, mark: str) -> AttemptOutcome:
        if self.tty is not None:
            env = self.environment(lease)
            started = functools.partial(self.running.__setitem__, mark)  # the tmux server: protected
            cwd = lease.env.get("HIVE_WORKSPACE") or self.workdir  # an attempt's worktree (attempt_dirs)
            return await self.tty.run(self.argv, cwd, env, lease, stop, self.stop_grace, started)
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _Protocol(loop),
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=lease.env.get("HIVE_WORKSPACE") or self.workdir,  # an attempt's worktree (attempt_dirs)
                env=self.environment(lease),
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        except (OSError, ValueError) as exc:
            return AttemptOutcome.failed(ERROR, self._start_error(exc))
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        self.running[mark] = proc.pid
        watch = _ProcessWatch(proc, protocol.exited, lease, stop, self.stop_grace)
        return await watch.run(json.dumps(lease.payload).encode())

    def _start_error(self, exc: Exception) -> str:
        program = self.argv[0]
        if isinstance(exc, OSError):
            detail = exc.strerror or str(exc)
            if exc.filename and str(exc.filename) not in (program, os.fsdecode(program)):
                detail += f": {exc.filename}"  # e.g. the workdir is missing
            return f"cannot run {program!r}: {detail}"
        return f"cannot run {program!r}: {exc}"


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Says when the process has exited. `Process.wait()` of Python 3.11 also waits for the pipes to
    close, which a process left in the background (holding them) can delay for as long as it runs."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=READ_CHUNK, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


class _ProcessWatch:
    """One running attempt: feeds stdin, reads both pipes, enforces the deadlines, reaps the group."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        exited: asyncio.Event,
        lease: Lease,
        stop: StopRequest,
        grace: float,
    ) -> None:
        self.proc = proc
        self.exited = exited
        self.lease = lease
        self.stop = stop
        self.grace = grace
        self.started = time.monotonic()
        self.last_output = self.started
        self.stdout = TailBuffer(STDOUT_CHARS)
        self.stderr = TailBuffer(STDERR_CHARS)
        self.output = TailBuffer(OUTPUT_CHARS)
        # `::hive-usage` lines leave stdout (the result) for the attempt's usage; the output keeps them
        self.usage = usage.UsageLines(usage.CURRENT.get() or _ignore, self.output.add)

    async def run(self, payload: bytes) -> AttemptOutcome:
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        readers = [
            asyncio.create_task(self._read(proc.stdout, self.stdout, self.usage)),
            asyncio.create_task(self._read(proc.stderr, self.stderr)),
        ]
        feeder = asyncio.create_task(_feed(proc.stdin, payload))
        exited = asyncio.create_task(self.exited.wait())
        stop_asked = self.stop.asked()
        stopped_for, detail = None, ""
        try:
            while not exited.done():
                limit = self._next_limit()
                if limit is not None and limit[0] <= time.monotonic():
                    stopped_for, detail = limit[1], limit[2]
                    _signal_group(proc.pid, signal.SIGKILL)
                    break
                timeout = None if limit is None else max(0.0, limit[0] - time.monotonic())
                await asyncio.wait({exited, stop_asked}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if stop_asked.done() and not exited.done():
                    stopped_for = self.stop.reason or INTERRUPTED
                    detail = stop_message(stopped_for)
                    await self._terminate(exited)
                    break
            await exited
        finally:
            exited.cancel()
            if not self.exited.is_set():  # we are being cancelled: leave nothing running behind
                _signal_group(proc.pid, signal.SIGKILL)
                with contextlib.suppress(asyncio.CancelledError):
                    await self.exited.wait()
            _signal_group(proc.pid, signal.SIGKILL)  # what the handler left in its group
            await self._finish_io(readers, feeder)
        returncode = proc.returncode if proc.returncode is not None else -signal.SIGKILL
        return exec_outcome(
            returncode,
            self.stdout.text(),
            self.stderr.text(),
            stopped_for=stopped_for,
            stop_detail=detail,
            stdout_complete=not self.stdout.truncated,
            output=self.output.text(),
        )

    def _next_limit(self) -> tuple[float, str, str] | None:
        """The earliest of the timeout and the stall deadline: (when, reason, message)."""
        limits = []
        if self.lease.timeout is not None and self.lease.timeout > 0:
            timeout = self.lease.timeout
            limits.append((self.started + timeout, TIMEOUT, f"timed out after {timeout:g}s"))
        if self.lease.stall_timeout is not None and self.lease.stall_timeout > 0:
            stall = self.lease.stall_timeout
            limits.append((self.last_output + stall, STALLED, f"stalled: no output for {stall:g}s"))
        return min(limits) if limits else None

    async def _terminate(self, exited: asyncio.Task[bool]) -> None:
        _signal_group(self.proc.pid, signal.SIGTERM)
        await asyncio.wait({exited}, timeout=self.grace)
        if not exited.done():
            _signal_group(self.proc.pid, signal.SIGKILL)

    async def _read(
        self, stream: asyncio.StreamReader, sink: TailBuffer, lines: usage.UsageLines | None = None
    ) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while chunk := await stream.read(READ_CHUNK):
            self.last_output = time.monotonic()
            text = decoder.decode(chunk)
            self.output.add(text)
            sink.add(lines.feed(text) if lines is not None else text)
        text = decoder.decode(b"", final=True)
        self.output.add(text)
        sink.add(lines.feed(text) + lines.finish() if lines is not None else text)

    async def _finish_io(self, readers: list[asyncio.Task[None]], feeder: asyncio.Task[None]) -> None:
        _, pending = await asyncio.wait(readers, timeout=PIPE_DRAIN)
        feeder.cancel()
        for task in pending:  # a process outside the group still holds a pipe
            task.cancel()
        await asyncio.gather(*readers, feeder, return_exceptions=True)
        if pending:
            transport = getattr(self.proc, "_transport", None)  # no public way to close the pipes
            if transport is not None:
                transport.close()


def _ignore(_increment: usage.Increment) -> None:
    pass


async def _feed(stdin: asyncio.StreamWriter, payload: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.write(payload)
        await stdin.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.close()
        await stdin.wait_closed()


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@functools.cache
def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, the handler gets SIGKILL when the agent dies, even by SIGKILL: an orphaned handler
    would go on working on a task that hived has given to someone else."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, sigkill = 1, int(signal.SIGKILL)

    def set_pdeathsig() -> None:
        prctl(pr_set_pdeathsig, sigkill)

    return set_pdeathsig
