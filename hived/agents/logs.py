"""Agent log files: one per incarnation (`agents/NAME/agent-N.log`), rotated by size with
copy-and-truncate (the agent keeps its O_APPEND descriptor, so it survives a hived restart), and
old incarnations pruned by a retention count."""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

from hived.model import paths

_LOG_RE = re.compile(r"^agent-(\d+)\.log$")


def incarnation_log(state_dir: Path, name: str, incarnation: int) -> Path:
    return paths.agent_dir(state_dir, name) / f"agent-{incarnation}.log"


def rotate_if_large(path: Path, max_bytes: int) -> bool:
    """Keep one rotated copy (`.1`) and start the live file over; True when it rotated."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    shutil.copyfile(path, path.with_name(path.name + ".1"))
    with open(path, "r+b") as fh:
        fh.truncate(0)
    return True


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
