"""A short command hived runs and reads (`git rev-parse`, `git ls-remote`, `podman image exists`):
the standard library's subprocess in a thread, not the event loop's.

hived's loop is uvloop, whose children keep extra copies of the pipes of their output (libuv closes
no inherited descriptor): a process the command leaves behind (ssh's ControlPersist master behind
`ls-remote`, rootless podman's pause process) would hold the output open, and reading it to its end
would wait for that process instead of the command. `subprocess.run` closes every other descriptor
in the child and ends at the command's exit."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Sequence


async def run_quick(
    argv: Sequence[str], env: dict[str, str], timeout: float, merge: bool = False
) -> tuple[int, str, str] | None:
    """(exit status, stdout, stderr) of the command, its stderr in stdout when `merge`; None when it
    did not end within `timeout` seconds (it is killed)."""

    def run() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            timeout=timeout,
            check=False,
        )

    try:
        done = await asyncio.to_thread(run)
    except subprocess.TimeoutExpired:
        return None
    text = (done.stdout or b"").decode("utf-8", "replace"), (done.stderr or b"").decode("utf-8", "replace")
    return done.returncode, text[0], text[1]
