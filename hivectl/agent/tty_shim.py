"""The program a `tty: true` handler's tmux pane runs (`python -m hivectl.agent.tty_shim ADDRESS`).

It connects to hive-agent's per-attempt unix socket (abstract, `ADDRESS`), reads the handler's argv,
environment and working directory from it (never from its own command line: secrets stay out of
`ps`), and runs the handler on a pseudo-terminal of its own, relaying both ways as `script(1)` does:
what the handler writes goes to the pane (what `tmux attach` shows) and to hive-agent (the log, the
stall and prompt detection, the result); what is typed into the pane (`tmux send-keys`, an attached
terminal) goes to the handler. At the end it sends the exit status. When hive-agent goes away (its
socket closes), the handler's process group is killed: a handler never outlives its agent.

Frames both ways: one type byte, a 4-byte big-endian length, the data. Agent -> shim: `S` (the start
JSON). Shim -> agent: `P` (the handler's pid), `O` (output bytes), `X` (the exit status).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import signal
import socket
import struct
import sys
import termios
import tty
from typing import Any

HEADER = struct.Struct(">cI")
READ_CHUNK = 65536


def frame(kind: bytes, data: bytes) -> bytes:
    return HEADER.pack(kind, len(data)) + data


def read_frame(conn: socket.socket) -> tuple[bytes, bytes]:
    head = _recv_exactly(conn, HEADER.size)
    kind, size = HEADER.unpack(head)
    return kind, _recv_exactly(conn, size)


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("hive-agent closed the connection")
        data += chunk
    return data


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect("\0" + args[0])
    _, body = read_frame(conn)
    start: dict[str, Any] = json.loads(body)
    size = _size_of(0)
    pid, master = pty.fork()
    if pid == 0:  # the handler
        _exec(start, size)
    conn.sendall(frame(b"P", str(pid).encode()))
    saved = _raw(0)
    signal.signal(signal.SIGWINCH, lambda *_: _copy_size(0, master))
    try:
        code = _relay(conn, master, pid)
    finally:
        if saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(0, termios.TCSAFLUSH, saved)
    with contextlib.suppress(OSError):
        conn.sendall(frame(b"X", str(code).encode()))
    return code if code >= 0 else 128 - code


def _exec(start: dict[str, Any], size: bytes | None) -> None:
    argv = [str(a) for a in start["argv"]]
    try:
        if size is not None:
            fcntl.ioctl(0, termios.TIOCSWINSZ, size)
        os.chdir(start["cwd"])
        os.execvpe(argv[0], argv, {str(k): str(v) for k, v in start["env"].items()})
    except OSError as exc:
        os.write(2, f"cannot run {argv[0]!r}: {exc.strerror or exc}\r\n".encode())
    os._exit(127)


def _relay(conn: socket.socket, master: int, pid: int) -> int:
    """Copy until the handler has exited; its exit code (negative: the signal that killed it)."""
    child = os.pidfd_open(pid)
    watched = [master, 0, conn.fileno(), child]
    while True:
        ready, _, _ = select.select(watched, [], [])
        if master in ready and not _pump(master, conn):
            watched.remove(master)
        if 0 in ready and not _forward(master):
            watched.remove(0)  # the pane is gone: its hangup reaches the handler too
        if conn.fileno() in ready and not conn.recv(READ_CHUNK):
            _kill_group(pid)  # hive-agent went away
            watched.remove(conn.fileno())
        if child in ready:
            while master in watched and _pump(master, conn, wait=False):
                pass  # what the handler wrote just before it ended
            _, status = os.waitpid(pid, 0)
            _kill_group(pid)  # what it left behind in its group
            return os.waitstatus_to_exitcode(status)


def _pump(master: int, conn: socket.socket, wait: bool = True) -> bool:
    if not wait and not select.select([master], [], [], 0.05)[0]:
        return False
    try:
        data = os.read(master, READ_CHUNK)
    except OSError:  # EIO: every holder of the terminal closed it
        return False
    if not data:
        return False
    with contextlib.suppress(OSError):
        _write_all(1, data)
    with contextlib.suppress(OSError):
        conn.sendall(frame(b"O", data))
    return True


def _forward(master: int) -> bool:
    try:
        data = os.read(0, READ_CHUNK)
    except OSError:
        return False
    if data:
        with contextlib.suppress(OSError):
            _write_all(master, data)
    return bool(data)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _size_of(fd: int) -> bytes | None:
    try:
        return fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None


def _copy_size(source: int, target: int) -> None:
    if (size := _size_of(source)) is not None:
        with contextlib.suppress(OSError):
            fcntl.ioctl(target, termios.TIOCSWINSZ, size)


def _raw(fd: int) -> list[Any] | None:
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        return None
    tty.setraw(fd)
    return saved


if __name__ == "__main__":
    sys.exit(main())
