"""One running `tty: true` attempt, from the agent's side of the shim's socket: its output, its
deadlines (timeout and stall, both paused while it waits for input), its prompt, its exit.

While the handler waits at a prompt (output quiet for `input_timeout`, last line matching
`prompt_pattern`), the time does not count toward its `timeout` and no stall is declared; output
coming again (an answer's echo, the handler going on) ends the wait.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hivectl.agent.handlers import (
    INTERRUPTED,
    OUTPUT_CHARS,
    STALLED,
    TIMEOUT,
    AttemptOutcome,
    StopRequest,
    TailBuffer,
    exec_outcome,
    parse_json_object,
    stop_message,
)
from hivectl.agent.tty_options import TerminalSink, TtyOptions
from hivectl.agent.tty_shim import HEADER
from hivectl.agent.wire import Lease

ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")
Kill = Callable[[int | None, int], Awaitable[Any]]


def plain(text: str) -> str:
    """Terminal output as text: escape sequences dropped, CRLF as LF."""
    return ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


def last_line(text: str) -> str:
    for line in reversed(plain(text).split("\n")):
        if line.strip():
            return line
    return ""


def result_text(output: str) -> str:
    """What stands for stdout: the JSON object on the last line, else the whole output."""
    line = last_line(output[-OUTPUT_CHARS:])
    return line if parse_json_object(line) is not None else plain(output)


class TerminalWatch:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        lease: Lease,
        stop: StopRequest,
        options: TtyOptions,
        sink: TerminalSink,
        grace: float,
        kill: Kill,
    ) -> None:
        self.reader, self.lease, self.stop, self.options = reader, lease, stop, options
        self.sink, self.grace, self.kill = sink, grace, kill
        self.started = self.last_output = time.monotonic()
        self.paused = 0.0  # seconds spent waiting for input, not counted toward the timeout
        self.waiting_since: float | None = None
        self.prompt_checked = False  # the quiet output since the last byte was checked already
        self.output = TailBuffer(OUTPUT_CHARS)
        self.pid: int | None = None
        self.code: int | None = None
        self.activity = asyncio.Event()

    async def run(self) -> AttemptOutcome:
        reading = asyncio.create_task(self._read())
        stop_asked = self.stop.asked()
        stopped_for, detail = None, ""
        try:
            while not reading.done():
                self._check_prompt()
                when, reason, message = self._next()
                now = time.monotonic()
                if reason is not None and when <= now:
                    stopped_for, detail = reason, message
                    await self.kill(self.pid, signal.SIGKILL)
                    break
                self.activity.clear()
                wake = asyncio.create_task(self.activity.wait())
                timeout = None if when == float("inf") else max(0.0, when - now)
                await asyncio.wait(
                    {reading, stop_asked, wake}, timeout=timeout, return_when="FIRST_COMPLETED"
                )
                wake.cancel()
                if stop_asked.done() and not reading.done():
                    stopped_for = self.stop.reason or INTERRUPTED
                    detail = stop_message(stopped_for)
                    await self._terminate(reading)
                    break
            await asyncio.wait({reading}, timeout=self.grace)
        finally:
            if not reading.done():
                await self.kill(self.pid, signal.SIGKILL)
                reading.cancel()
        code = self.code if self.code is not None else -signal.SIGKILL
        text = self.output.text()
        return exec_outcome(
            code,
            result_text(text),
            plain(text),
            stopped_for=stopped_for,
            stop_detail=detail,
            output=plain(text),
        )

    def _next(self) -> tuple[float, str | None, str]:
        """The next moment to act: a deadline (timeout, stall) or a prompt check."""
        moments: list[tuple[float, str | None, str]] = [(float("inf"), None, "")]
        if self.waiting_since is not None:
            return moments[0]  # timers paused
        timeout, stall = self.lease.timeout, self.lease.stall_timeout
        if timeout:
            moments.append((self.started + self.paused + timeout, TIMEOUT, f"timed out after {timeout:g}s"))
        if stall:
            moments.append((self.last_output + stall, STALLED, f"stalled: no output for {stall:g}s"))
        if self.options.prompt is not None and not self.prompt_checked:
            moments.append((self.last_output + self.options.input_timeout, None, ""))
        return min(moments, key=lambda m: m[0])

    def _check_prompt(self) -> None:
        prompt = self.options.prompt
        if prompt is None or self.prompt_checked or self.waiting_since is not None:
            return
        if time.monotonic() < self.last_output + self.options.input_timeout:
            return
        self.prompt_checked = True
        line = last_line(self.output.text()[-4096:])
        if prompt.search(line):
            self.waiting_since = time.monotonic()
            self.sink("waiting", {"prompt": line.strip()[:300]})

    def _heard(self) -> None:
        now = time.monotonic()
        self.last_output = now
        self.prompt_checked = False
        if self.waiting_since is not None:
            self.paused += now - self.waiting_since
            self.waiting_since = None
            self.sink("running", {})
        self.activity.set()

    async def _read(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            try:
                head = await self.reader.readexactly(HEADER.size)
                kind, size = HEADER.unpack(head)
                data = await self.reader.readexactly(size)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if kind == b"O":
                self.output.add(decoder.decode(data))
                self._heard()
            elif kind == b"P":
                self.pid = int(data)
            elif kind == b"X":
                self.code = int(data)

    async def _terminate(self, reading: asyncio.Task[None]) -> None:
        await self.kill(self.pid, signal.SIGTERM)
        await asyncio.wait({reading}, timeout=self.grace)
        if not reading.done():
            await self.kill(self.pid, signal.SIGKILL)
