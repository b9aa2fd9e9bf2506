"""hived's short commands (hived.agents.quick): on hived's own loop, uvloop, a command that leaves a
process behind still ends when the command does (uvloop's children keep copies of their output pipe,
so reading to its end waited for what the command left behind)."""

from __future__ import annotations

import os
import signal

import uvloop

from hived.agents.quick import run_quick

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_command_that_leaves_a_process_behind_ends_with_the_command() -> None:
    async def main() -> tuple[int, str, str] | None:
        # (a daemon's way: its own stdio elsewhere; uvloop's extra copies of the pipe stayed open in it)
        return await run_quick(["sh", "-c", "sleep 60 </dev/null >/dev/null 2>&1 & echo $!"], ENV, 30)

    done = uvloop.run(main())
    assert done is not None
    code, out, _err = done
    left = int(out.strip())
    try:
        assert code == 0
        assert _alive(left)  # the command's answer came while what it left still ran
    finally:
        os.kill(left, signal.SIGKILL)


def test_the_status_the_output_and_the_error_come_apart_or_merged() -> None:
    async def main(merge: bool) -> tuple[int, str, str] | None:
        return await run_quick(["sh", "-c", "echo out; echo err >&2; exit 3"], ENV, 10, merge)

    assert uvloop.run(main(False)) == (3, "out\n", "err\n")
    merged = uvloop.run(main(True))
    assert merged is not None and merged[0] == 3 and sorted(merged[1].split()) == ["err", "out"]


def test_a_command_over_its_time_is_killed_and_answers_none() -> None:
    async def main() -> tuple[int, str, str] | None:
        return await run_quick(["sleep", "30"], ENV, timeout=0.2)

    assert uvloop.run(main()) is None
