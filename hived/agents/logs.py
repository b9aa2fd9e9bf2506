"""Agent log files: one per incarnation (`agents/NAME/agent-N.log`), rotated by size with
copy-and-truncate (the agent keeps its O_APPEND descriptor, so it survives a hived restart), and
old incarnations pruned by a retention count.

Rotation copies at most `max_bytes` (the newest ones) into `.1`, through a temporary file and a
rename, and blocks: hived runs it in a worker thread (`rotate_all`), never on its event loop. What
the agent writes between the copy and the truncation (a few milliseconds) is lost, as with any
copy-and-truncate. The agent bounds its own writes too (`hivectl/agent/logcap.py`)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from hived.model import paths

_LOG_RE = re.compile(r"^agent-(\d+)\.log$")
COPY_CHUNK = 2**20
log = logging.getLogger("hived.agents")


def incarnation_log(state_dir: Path, name: str, incarnation: int) -> Path:
    return paths.agent_dir(state_dir, name) / f"agent-{incarnation}.log"


def rotate_if_large(path: Path, max_bytes: int) -> bool:
    """Over `max_bytes`: keep its last `max_bytes` as `.1` and start the live file over; True when it
    rotated. Blocking."""
    try:
        fh = open(path, "r+b")  # noqa: SIM115 - closed below, after the truncation
    except FileNotFoundError:
        return False
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size <= max_bytes:
            return False
        rotated = path.with_name(path.name + ".1")
        partial = path.with_name(path.name + ".1.tmp")
        fh.seek(size - max_bytes)
        with open(partial, "wb") as out:
            left = max_bytes  # not to the end: the agent may be writing on
            while left > 0 and (chunk := fh.read(min(COPY_CHUNK, left))):
                out.write(chunk)
                left -= len(chunk)
        os.replace(partial, rotated)
        fh.truncate(0)
    return True


def rotate_all(paths: list[Path], max_bytes: int) -> list[Path]:
    """`rotate_if_large` for each live log (in a worker thread); returns the rotated ones."""
    rotated = []
    for path in paths:
        try:
            if rotate_if_large(path, max_bytes):
                rotated.append(path)
        except OSError as exc:
            log.warning("agent log %s: cannot rotate: %s", path, exc.strerror or exc)
    return rotated


def prune(state_dir: Path, name: str, keep: int) -> list[Path]:
    """Delete logs of all but the newest `keep` incarnations; returns what was deleted."""
    folder = paths.agent_dir(state_dir, name)
    if not folder.is_dir():
        return []
    numbered = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _LOG_RE.match(p.name)))
    doomed = [p for _, p in numbered[:-keep]] if keep > 0 else [p for _, p in numbered]
    removed = []
    for path in doomed:
        for victim in (path, path.with_name(path.name + ".1")):
            with contextlib.suppress(FileNotFoundError):
                victim.unlink()
                removed.append(victim)
    return removed
