"""The agent's handlers with real subprocesses and real imports, no daemon: what a task's process or
function turns into (result, error, reason, output), and that limits kill what they must."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from hivectl.agent.exec_handler import ExecHandler
from hivectl.agent.handlers import (
    AttemptOutcome,
    StopRequest,
    TailBuffer,
    exec_outcome,
    exit_message,
    last_line,
    parse_json_object,
    python_outcome,
)
from hivectl.agent.pick import make_handler
from hivectl.agent.python_handler import PythonHandler, load_function
from hived.model.schemas import Lease


def lease(payload: dict[str, Any] | None = None, **fields: Any) -> Lease:
    return Lease(task_id="task-1", attempt=2, lease=7, type="build", payload=payload or {}, **fields)


def script(code: str, workdir: Path, env: dict[str, str] | None = None, **kw: Any) -> ExecHandler:
    """An exec handler running `code` with this Python."""
    return ExecHandler([sys.executable, "-c", textwrap.dedent(code)], str(workdir), env or {}, **kw)


async def run(
    handler: Any, the_lease: Lease | None = None, stop: StopRequest | None = None
) -> AttemptOutcome:
    return await asyncio.wait_for(handler.run(the_lease or lease(), stop or StopRequest()), timeout=20)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# --- pure rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('  \n{"a": [1, 2]}\n\n', {"a": [1, 2]}),
        ("[1, 2]", None),
        ('"a string"', None),
        ("hello", None),
        ('{"a": NaN}', None),
        ('{"a": 1} trailing', None),
        ("", None),
    ],
)
def test_only_a_strict_json_object_is_a_result(text: str, expected: dict[str, Any] | None) -> None:
    assert parse_json_object(text) == expected


@pytest.mark.parametrize(
    ("returncode", "stderr", "message"),
    [
        (3, "first\nthe reason\n\n  \n", "exit code 3: the reason"),
        (1, "", "exit code 1"),
        (2, "x" * 1000, "exit code 2: " + "x" * 300),
        (-9, "ignored", "killed by signal 9 (SIGKILL)"),
        (-15, "", "killed by signal 15 (SIGTERM)"),
    ],
)
def test_exit_message(returncode: int, stderr: str, message: str) -> None:
    assert exit_message(returncode, stderr) == message


def test_exec_outcome_of_a_stopped_process_keeps_the_tails() -> None:
    outcome = exec_outcome(-9, "out", "err", stopped_for="timeout", stop_detail="timed out after 2s")
    assert (outcome.ok, outcome.reason, outcome.error) == (False, "timeout", "timed out after 2s")
    assert outcome.result == {"exit_code": -9, "stdout": "out", "stderr": "err"}


def test_exec_outcome_does_not_parse_a_truncated_stdout() -> None:
    outcome = exec_outcome(0, '{"a": 1}', "", stdout_complete=False)
    assert outcome.ok and outcome.result == {"exit_code": 0, "stdout": '{"a": 1}', "stderr": ""}


@pytest.mark.parametrize(
    ("value", "result"),
    [
        ({"a": 1}, {"a": 1}),
        (None, {}),
        (42, {"value": 42}),
        ("text", {"value": "text"}),
        ([1, (2, 3)], {"value": [1, [2, 3]]}),
        ({1: "int key"}, {"1": "int key"}),
    ],
)
def test_python_return_values(value: Any, result: dict[str, Any]) -> None:
    outcome = python_outcome(value)
    assert outcome.ok and outcome.result == result


@pytest.mark.parametrize("value", [{1, 2}, {"when": object()}, float("nan")])
def test_a_return_value_that_is_not_json_fails_clearly(value: Any) -> None:
    outcome = python_outcome(value)
    assert not outcome.ok and outcome.reason == "error"
    assert outcome.error is not None and "not JSON-serialisable" in outcome.error


def test_tail_buffer_keeps_the_newest_characters() -> None:
    buffer = TailBuffer(limit=10)
    for chunk in ["0123456789", "abcdefghij", "ABC"]:
        buffer.add(chunk)
    assert buffer.text() == "defghijABC" and buffer.truncated
    small = TailBuffer(limit=10)
    small.add("abc")
    assert small.text() == "abc" and not small.truncated


def test_last_line_skips_blank_lines() -> None:
    assert last_line("a\n  b  \n\n \n") == "b"
    assert last_line("") == ""


def test_make_handler_picks_by_spec(tmp_path: Path) -> None:
    assert isinstance(make_handler({"exec": ["true"]}, str(tmp_path), {}), ExecHandler)
    assert isinstance(
        make_handler({"python": "hivectl.agent.builtin:echo"}, str(tmp_path), {}), PythonHandler
    )
    with pytest.raises(ValueError, match="exec"):
        make_handler({}, str(tmp_path), {})


# --- exec -----------------------------------------------------------------------------------------


async def test_payload_on_stdin_and_a_json_object_on_stdout_is_the_result(tmp_path: Path) -> None:
    handler = script(
        """
        import json, os, sys
        payload = json.load(sys.stdin)
        print(json.dumps({"doubled": payload["n"] * 2, "cwd": os.getcwd()}))
        """,
        tmp_path,
    )
    outcome = await run(handler, lease({"n": 21}))
    assert outcome.ok and outcome.reason is None
    assert outcome.result == {"doubled": 42, "cwd": str(tmp_path)}


async def test_environment_of_the_task(tmp_path: Path) -> None:
    handler = script(
        """
        import json, os
        keys = ["HIVE_TASK_ID", "HIVE_TASK_TYPE", "HIVE_ATTEMPT", "AGENT_VAR", "SHARED", "PATH"]
        print(json.dumps({k: os.environ.get(k) for k in keys}))
        """,
        tmp_path,
        env={"AGENT_VAR": "from-agent", "SHARED": "agent"},
    )
    outcome = await run(handler, lease(env={"SHARED": "lease"}))
    assert outcome.result is not None
    assert outcome.result["HIVE_TASK_ID"] == "task-1"
    assert outcome.result["HIVE_TASK_TYPE"] == "build"
    assert outcome.result["HIVE_ATTEMPT"] == "2"
    assert outcome.result["AGENT_VAR"] == "from-agent"
    assert outcome.result["SHARED"] == "lease"  # the lease's env wins over the agent's
    assert outcome.result["PATH"] == os.environ["PATH"]


async def test_non_json_stdout_gives_the_tails(tmp_path: Path) -> None:
    handler = script(
        """
        import sys
        sys.stdout.write("x" * 5000 + "END")
        sys.stderr.write("a warning\\n")
        """,
        tmp_path,
    )
    outcome = await run(handler)
    assert outcome.ok
    assert outcome.result is not None
    assert set(outcome.result) == {"exit_code", "stdout", "stderr"}
    assert outcome.result["exit_code"] == 0
    assert len(outcome.result["stdout"]) == 4096 and outcome.result["stdout"].endswith("xEND")
    assert outcome.result["stderr"] == "a warning\n"


async def test_a_json_array_is_not_a_result(tmp_path: Path) -> None:
    outcome = await run(script("print('[1, 2]')", tmp_path))
    assert outcome.ok and outcome.result == {"exit_code": 0, "stdout": "[1, 2]\n", "stderr": ""}


async def test_output_interleaves_stdout_and_stderr(tmp_path: Path) -> None:
    handler = script(
        """
        import sys, time
        for stream, text in [(sys.stdout, "one "), (sys.stderr, "two "), (sys.stdout, "three")]:
            stream.write(text)
            stream.flush()
            time.sleep(0.05)
        """,
        tmp_path,
    )
    outcome = await run(handler)
    assert outcome.output == "one two three"


async def test_output_is_bounded(tmp_path: Path) -> None:
    outcome = await run(script("import sys; sys.stdout.write('y' * 200_000 + 'LAST')", tmp_path))
    assert len(outcome.output) == 64 * 1024 and outcome.output.endswith("yLAST")


async def test_non_zero_exit_fails_with_the_last_stderr_line(tmp_path: Path) -> None:
    handler = script(
        """
        import sys
        print("partial output")
        sys.stderr.write("loading\\nmodel not found: small\\n\\n")
        sys.exit(3)
        """,
        tmp_path,
    )
    outcome = await run(handler)
    assert (outcome.ok, outcome.reason) == (False, "error")
    assert outcome.error == "exit code 3: model not found: small"
    assert outcome.result == {
        "exit_code": 3,
        "stdout": "partial output\n",
        "stderr": "loading\nmodel not found: small\n\n",
    }


async def test_killed_by_a_signal(tmp_path: Path) -> None:
    outcome = await run(script("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", tmp_path))
    assert (outcome.ok, outcome.reason) == (False, "error")
    assert outcome.error == "killed by signal 9 (SIGKILL)"


async def test_missing_program_names_it(tmp_path: Path) -> None:
    handler = ExecHandler(["hive-no-such-program", "--flag"], str(tmp_path), {})
    outcome = await run(handler)
    assert (outcome.ok, outcome.reason) == (False, "error")
    assert outcome.error is not None and "'hive-no-such-program'" in outcome.error
    assert "No such file" in outcome.error


async def test_missing_workdir_is_named(tmp_path: Path) -> None:
    handler = ExecHandler([sys.executable, "-c", "pass"], str(tmp_path / "gone"), {})
    outcome = await run(handler)
    assert not outcome.ok and outcome.error is not None and str(tmp_path / "gone") in outcome.error


SPAWNS_A_GRANDCHILD = """
    import subprocess, sys, time
    child = subprocess.Popen(["sleep", "60"])
    print(f"grandchild {child.pid}", flush=True)
    time.sleep(60)
"""


def grandchild_pid(outcome: AttemptOutcome) -> int:
    assert outcome.result is not None
    line = next(ln for ln in outcome.result["stdout"].splitlines() if ln.startswith("grandchild"))
    return int(line.split()[1])


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = await run(script(SPAWNS_A_GRANDCHILD, tmp_path), lease(timeout=1.0))
    assert time.monotonic() - started < 5
    assert (outcome.ok, outcome.reason, outcome.error) == (False, "timeout", "timed out after 1s")
    pid = grandchild_pid(outcome)
    await eventually(lambda: gone(pid))


async def test_background_processes_do_not_outlive_a_finished_handler(tmp_path: Path) -> None:
    handler = script(
        """
        import subprocess
        child = subprocess.Popen(["sleep", "60"])  # it holds our stdout and stderr open
        print(f"grandchild {child.pid}", flush=True)
        """,
        tmp_path,
    )
    started = time.monotonic()
    outcome = await run(handler)
    assert time.monotonic() - started < 5  # the handler's exit ends the attempt, not the pipes closing
    assert outcome.ok
    pid = grandchild_pid(outcome)
    await eventually(lambda: gone(pid))


async def test_silence_past_the_stall_timeout_kills_the_group(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = await run(script(SPAWNS_A_GRANDCHILD, tmp_path), lease(stall_timeout=0.5, timeout=30))
    assert time.monotonic() - started < 5
    assert (outcome.ok, outcome.reason) == (False, "stalled")
    assert outcome.error == "stalled: no output for 0.5s"
    assert "grandchild" in outcome.output
    pid = grandchild_pid(outcome)
    await eventually(lambda: gone(pid))


async def test_output_on_either_stream_keeps_a_task_from_stalling(tmp_path: Path) -> None:
    handler = script(
        """
        import sys, time
        for i in range(8):
            (sys.stdout if i % 2 else sys.stderr).write(f"tick {i}\\n")
            (sys.stdout if i % 2 else sys.stderr).flush()
            time.sleep(0.15)
        """,
        tmp_path,
    )
    outcome = await run(handler, lease(stall_timeout=0.5))
    assert outcome.ok and outcome.reason is None
    assert outcome.output.splitlines() == [f"tick {i}" for i in range(8)]


async def test_cancel_terminates_then_kills(tmp_path: Path) -> None:
    handler = script(
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open("ready", "w").close()
        time.sleep(60)
        """,
        tmp_path,
        stop_grace=0.3,
    )
    stop = StopRequest()
    attempt = asyncio.create_task(run(handler, stop=stop))
    await eventually(lambda: (tmp_path / "ready").exists())
    started = time.monotonic()
    stop.set("cancelled")
    outcome = await attempt
    assert time.monotonic() - started < 3
    assert (outcome.ok, outcome.reason, outcome.error) == (False, "cancelled", "cancelled")
    assert outcome.result is not None and outcome.result["exit_code"] == -9


async def test_interrupt_lets_a_handler_exit_on_sigterm(tmp_path: Path) -> None:
    handler = script(
        """
        import signal, sys, time
        def bye(*_):
            print("cleaning up", flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        open("ready", "w").close()
        time.sleep(60)
        """,
        tmp_path,
    )
    stop = StopRequest()
    attempt = asyncio.create_task(run(handler, stop=stop))
    await eventually(lambda: (tmp_path / "ready").exists())
    stop.set("interrupted")
    outcome = await attempt
    assert (outcome.ok, outcome.reason) == (False, "interrupted")
    assert "cleaning up" in outcome.output


async def test_a_large_payload_to_a_handler_that_does_not_read_it(tmp_path: Path) -> None:
    outcome = await run(script("print('{}')", tmp_path), lease({"blob": "z" * 1_000_000}))
    assert outcome.ok and outcome.result == {}


async def test_a_large_payload_round_trip(tmp_path: Path) -> None:
    handler = script("import sys; sys.stdout.write(sys.stdin.read())", tmp_path)
    outcome = await run(handler, lease({"blob": "z" * 1_000_000}))
    assert outcome.ok and outcome.result == {"blob": "z" * 1_000_000}


async def test_arguments_are_never_a_shell_string(tmp_path: Path) -> None:
    handler = ExecHandler(
        [sys.executable, "-c", "import json, sys; print(json.dumps({'argv': sys.argv[1:]}))", "$(id)", "a;b"],
        str(tmp_path),
        {},
    )
    outcome = await run(handler)
    assert outcome.result == {"argv": ["$(id)", "a;b"]}


# --- python ---------------------------------------------------------------------------------------


@pytest.fixture
def module(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Writes a module into the workdir; returns its name. sys.path and sys.modules are restored."""
    names: list[str] = []
    saved_path = list(sys.path)

    def write(code: str) -> str:
        name = f"handler_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(code))
        names.append(name)
        return name

    yield write
    sys.path[:] = saved_path
    for name in names:
        sys.modules.pop(name, None)


async def test_python_sync_handler(tmp_path: Path) -> None:
    outcome = await run(PythonHandler("hivectl.agent.builtin:echo", str(tmp_path)), lease({"a": [1, 2]}))
    assert outcome.ok and outcome.result == {"a": [1, 2]}


async def test_python_async_handler(tmp_path: Path) -> None:
    outcome = await run(PythonHandler("hivectl.agent.builtin:sleep", str(tmp_path)), lease({"seconds": 0.01}))
    assert outcome.ok and outcome.result == {"slept": 0.01}


async def test_python_exception_fails_the_attempt(tmp_path: Path) -> None:
    handler = PythonHandler("hivectl.agent.builtin:fail", str(tmp_path))
    outcome = await run(handler, lease({"message": "disk full"}))
    assert (outcome.ok, outcome.reason, outcome.error) == (False, "error", "RuntimeError: disk full")


async def test_python_handler_from_the_workdir(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module(
        """
        import os
        def answer(payload):
            return 42
        def nothing(payload):
            return None
        def not_json(payload):
            return {"when": object()}
        def leave(payload):
            raise SystemExit(3)
        async def aleave(payload):
            raise KeyboardInterrupt
        class Greeter:
            async def __call__(self, payload):
                return {"hello": payload["name"]}
        greet = Greeter()
        """
    )
    workdir = str(tmp_path)
    assert (await run(PythonHandler(f"{name}:answer", workdir))).result == {"value": 42}
    assert (await run(PythonHandler(f"{name}:nothing", workdir))).result == {}
    bad = await run(PythonHandler(f"{name}:not_json", workdir))
    assert not bad.ok and bad.error is not None and "not JSON-serialisable" in bad.error
    exited = await run(PythonHandler(f"{name}:leave", workdir))
    assert (exited.ok, exited.error) == (False, "SystemExit: 3")
    interrupted = await run(PythonHandler(f"{name}:aleave", workdir))
    assert (interrupted.ok, interrupted.error) == (False, "KeyboardInterrupt")
    greeted = await run(PythonHandler(f"{name}:greet", workdir), lease({"name": "ada"}))
    assert greeted.result == {"hello": "ada"}


async def test_a_sync_handler_runs_in_a_thread(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module(
        """
        import time
        def slow(payload):
            time.sleep(0.5)
            return {"slept": True}
        """
    )
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    outcome = await run(PythonHandler(f"{name}:slow", str(tmp_path)))
    tick_task.cancel()
    assert outcome.result == {"slept": True}
    assert ticks >= 10  # the loop kept running while the function slept


async def test_python_timeouts(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module(
        """
        import time
        def blocking(payload):
            time.sleep(3)
        """
    )
    started = time.monotonic()
    sync_outcome = await run(PythonHandler(f"{name}:blocking", str(tmp_path)), lease(timeout=0.2))
    async_outcome = await run(
        PythonHandler("hivectl.agent.builtin:sleep"), lease({"seconds": 30}, timeout=0.2)
    )
    assert time.monotonic() - started < 2
    for outcome in (sync_outcome, async_outcome):
        assert (outcome.ok, outcome.reason, outcome.error) == (False, "timeout", "timed out after 0.2s")


async def test_python_cancel(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module(
        """
        import asyncio
        state = {"started": False, "cleaned_up": False}
        async def wait_forever(payload):
            state["started"] = True
            try:
                await asyncio.sleep(60)
            finally:
                state["cleaned_up"] = True
        """
    )
    handler = PythonHandler(f"{name}:wait_forever", str(tmp_path))
    state = sys.modules[name].state
    stop = StopRequest()
    attempt = asyncio.create_task(run(handler, stop=stop))
    await eventually(lambda: state["started"])
    stop.set("cancelled")
    stop.set("interrupted")  # the first reason stands
    outcome = await attempt
    assert (outcome.ok, outcome.reason, outcome.error) == (False, "cancelled", "cancelled")
    assert state["cleaned_up"]


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("hive_no_such_module:fn", ModuleNotFoundError),
        ("hivectl.agent.builtin:no_such_function", AttributeError),
        ("hivectl.agent.handlers:TAIL_CHARS", TypeError),
        ("no_colon", ValueError),
    ],
)
def test_python_handler_that_cannot_load(target: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        load_function(target)


async def test_a_stop_request_is_one_shared_future_that_a_cancelled_waiter_leaves_alone() -> None:
    stop = StopRequest()
    asked = stop.asked()
    assert stop.asked() is asked and not asked.done() and not stop.is_set()
    waiter = asyncio.create_task(stop.wait())
    await asyncio.sleep(0)
    waiter.cancel()  # (a handler's own wait, given up) must not cancel the attempt's stop
    await asyncio.gather(waiter, return_exceptions=True)
    assert not asked.cancelled()
    stop.set("cancelled")
    stop.set("interrupted")  # the first reason wins
    assert asked.done() and stop.is_set() and stop.reason == "cancelled"
    await asyncio.wait_for(stop.wait(), 1)
    late = StopRequest()
    late.set("interrupted")
    assert late.asked().done()  # asked for after the stop: done already
