"""Keeping an exec attempt's processes inside the attempt.

Each handler process runs in its own session, so killing its process group at the end of the attempt
reaches its ordinary children. A child that calls `setsid` (or daemonizes by double fork) leaves the
group, and when the handler exits it would be reparented to init and run on for good. To keep it:

- the agent makes itself a *child subreaper* (Linux `PR_SET_CHILD_SUBREAPER`): orphaned descendants
  are reparented to the agent instead of init, so they stay in its process tree;
- every handler gets `HIVE_ATTEMPT_MARK` (task and lease) in its environment, which its descendants
  inherit, so a process can be attributed to its attempt wherever it sits in the tree;
- when an attempt ends, `sweep` kills the agent's descendants that carry that attempt's mark, and
  those that belong to no attempt still running (outside every running handler's tree, with no
  running attempt's mark); then it reaps those of them that were reparented to the agent.

When the agent itself dies (kill -9), its handlers get SIGKILL from the kernel (`PR_SET_PDEATHSIG`)
and hived kills whatever still carries the agent's id and incarnation in its environment
(`hived/agents/process.py`). Not contained: a process that clears its environment *and* escapes the
tree (only possible if the agent is not a subreaper: not Linux), or one started through another
service (systemd-run, a container runtime, ssh). Cgroups are not used: they need a delegated,
writable cgroup v2 tree, which hived cannot count on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys

import psutil

log = logging.getLogger("hive-agent")

MARK = "HIVE_ATTEMPT_MARK"
AGENT_OWN = "hive-agent"  # the mark of the agent's own helpers (git for workspaces): never swept
HELPERS: set[int] = set()  # their pids, while they run (their trees are never swept either)
SPAWNING = asyncio.Lock()  # a helper is started and its pid noted under it; a sweep looks under it
PR_SET_CHILD_SUBREAPER = 36
REAP_WAIT = 1.0  # how long to wait for killed orphans to die, to reap them
REAP_POLL = 0.01


def mark_of(task_id: str, lease: int) -> str:
    return f"{task_id}:{lease}"


@functools.cache
def become_subreaper() -> bool:
    """Orphaned descendants are reparented to this process instead of init (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
            return True
        error = os.strerror(ctypes.get_errno())
    except (OSError, AttributeError) as exc:
        error = str(exc)
    log.warning("cannot become a child subreaper (%s): a handler's setsid children may escape", error)
    return False


def _environ_mark(proc: psutil.Process) -> str | None:
    try:
        return proc.environ().get(MARK)
    except (psutil.Error, OSError):
        return None


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def find_leftovers(ended: str, running: dict[str, int | None]) -> list[psutil.Process]:
    """Descendants of this process that belong to the ended attempt or to no running attempt.
    `running`: the marks of the attempts still running, with their handler's pid once known."""
    me = psutil.Process()
    protected: set[int] = set()
    for pid in [*running.values(), *HELPERS]:
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                handler = psutil.Process(pid)
                protected.add(pid)
                protected.update(child.pid for child in _tree(handler))
    leftovers = []
    for proc in _tree(me):
        mark = _environ_mark(proc)
        if mark == AGENT_OWN:
            continue
        if mark == ended or (mark not in running and proc.pid not in protected):
            leftovers.append(proc)
    return leftovers


async def sweep(ended: str, running: dict[str, int | None]) -> list[int]:
    """Kill the leftovers of the attempt marked `ended` (see `find_leftovers`) and reap the ones that
    are this process's children; returns their pids. No-op where /proc cannot be read."""
    async with SPAWNING:
        try:
            leftovers = find_leftovers(ended, running)
        except psutil.Error:
            return []
        for proc in leftovers:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
    if leftovers:
        log.info("killed %d process(es) left by attempt %s", len(leftovers), ended)
    me = os.getpid()
    ours = {p.pid for p in leftovers if _parent(p) == me}
    deadline = asyncio.get_running_loop().time() + REAP_WAIT
    while ours:
        ours = {pid for pid in ours if not _reaped(pid)}
        if not ours or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(REAP_POLL)
    return [p.pid for p in leftovers]


def _parent(proc: psutil.Process) -> int | None:
    try:
        return proc.ppid()
    except psutil.Error:
        return None


def _reaped(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid
