"""A hard bound on what the agent writes to its log file between two rotations by hived.

A spawned agent's stdout and stderr are its log file, which hived rotates when it is over
`agent_log_max_bytes` (HIVE_AGENT_LOG_MAX_BYTES), checking about once a second. A python handler
printing hundreds of MB a second would grow the file far past that bound between two checks, so the
agent wraps `sys.stdout` and `sys.stderr`: while the file is at `HEADROOM` times the bound, what is
written through them is dropped (and counted, in a line written once the file is small again).
Output written to the file descriptors directly (C code, a python handler's child processes) is not
capped here; hived's rotation still bounds it, a second later.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from typing import Any, TextIO

ENV = "HIVE_AGENT_LOG_MAX_BYTES"
HEADROOM = 2  # writes stop at twice the bound; hived rotates at the bound
CHECK_EVERY = 0.05  # seconds between two looks at the file's size
CHECK_AFTER = 64 * 1024  # or after this many characters written


class _Size:
    """The size of the log file, looked at now and then (shared by stdout and stderr)."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd = fd
        self.limit = limit
        self.size = 0
        self.checked = 0.0
        self.written = 0
        self.dropped = 0

    def room(self) -> int:
        """How many more characters may be written now."""
        now = time.monotonic()
        if self.written >= CHECK_AFTER or now - self.checked >= CHECK_EVERY:
            self.size, self.checked, self.written = os.fstat(self.fd).st_size, now, 0
        return max(0, self.limit - self.size - self.written)


class CappedStream:
    """`write` goes through while the log has room; everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO, size: _Size) -> None:
        self._stream = stream
        self._size = size

    def write(self, text: str) -> int:
        size, length = self._size, len(text)
        room = size.room()
        if size.dropped and room > 0:
            note = f"[hive-agent: {size.dropped} characters of output dropped: the log was over its bound]\n"
            size.dropped = 0
            self._stream.write(note)
            size.written += len(note)
        if length > room:
            size.dropped += length - room
            text = text[:room]
        if text:
            self._stream.write(text)
            size.written += len(text)
        return length

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def cap_output(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Wrap sys.stdout and sys.stderr when they go to a regular file and hived gave the bound."""
    try:
        limit = int(environ.get(ENV, ""))
        mode = os.fstat(sys.stderr.fileno()).st_mode
    except (ValueError, OSError, AttributeError):
        return False
    if limit <= 0 or not stat.S_ISREG(mode):
        return False
    size = _Size(sys.stderr.fileno(), HEADROOM * limit)
    sys.stdout = CappedStream(sys.stdout, size)  # type: ignore[assignment]
    sys.stderr = CappedStream(sys.stderr, size)  # type: ignore[assignment]
    return True
