"""Interactive agents (`tty: true` exec handlers), with the real hived, hive-agent and tmux: a task
reaches `waiting_input` at its prompt and stays there past its timeout and stall timeout (paused),
`hivectl task send` answers it and it completes with the answer in its result; `hivectl task attach`
in a tmux session driven by send-keys shows the handler's terminal, types into it, and detaching
leaves the task running; a timeout or a cancel kills the session; bad input is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Hived, wait_for

TMUX = shutil.which("tmux")
HIVECTL = str(Path(sys.executable).parent / "hivectl")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")

ASK = """
import json, os, sys
payload = json.load(open(os.environ["HIVE_PAYLOAD"]))
print("hello", payload["name"], flush=True)
answers = [input(question) for question in payload["questions"]]
tty = sys.stdin.isatty() and sys.stdout.isatty()
print(json.dumps({"answers": answers, "name": payload["name"], "tty": tty}))
"""
FOREVER = """
import time
print("working", flush=True)
time.sleep(3600)
"""
PROMPT = r"\? \[y/n\] $"


def hivectl(hived: Hived, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HIVE_SOCKET": str(hived.socket)}
    env.pop("HIVE_URL", None)
    return subprocess.run([HIVECTL, *args], env=env, capture_output=True, text=True, timeout=60)


def sessions(hived: Hived, agent: str) -> str:
    sock = hived.state_dir / "agents" / agent / "tmux.sock"
    proc = subprocess.run([TMUX or "tmux", "-S", str(sock), "ls"], capture_output=True, text=True)
    return proc.stdout


def talker(hived: Hived, tmp_path: Path, name: str = "talker", script: str = ASK, **spec: object) -> None:
    path = tmp_path / f"{name}.py"
    path.write_text(script)
    handler = {
        "exec": [sys.executable, str(path)],
        "tty": True,
        "prompt_pattern": PROMPT,
        "input_timeout": "0.3s",
    }
    hived.spawn(name, handler, **spec)


def test_a_task_waits_at_its_prompt_with_its_timers_paused_and_completes_once_answered(
    hived: Hived, tmp_path: Path
) -> None:
    talker(hived, tmp_path)
    payload = {"name": "bob", "questions": ["Proceed? [y/n] "]}
    task = hived.submit("ask", payload=payload, timeout=2, stall_timeout=1)
    wait_for(lambda: hived.task(task["id"])["status"] == "waiting_input", what="the task at its prompt")
    terminal = hived.api("GET", f"/tasks/{task['id']}/terminal")
    assert terminal["session"] == f"hive-{task['id']}" and terminal["agent"] == "talker"
    assert "hive_tasks_waiting_input 1.0" in hived.client.get("/metrics").text
    assert f"hive-{task['id']}" in sessions(hived, "talker")
    # Past its timeout (2 s) and stall timeout (1 s), it still waits: both are paused.
    held_until = time.monotonic() + 3.5
    while time.monotonic() < held_until:
        assert hived.task(task["id"])["status"] == "waiting_input"
        time.sleep(0.1)
    sent = hivectl(hived, "task", "send", task["id"][:8], "yes")
    assert sent.returncode == 0, sent.stderr
    assert f"task/{task['id']}: sent 3 character(s)" in sent.stdout
    done = hived.wait_task(task["id"])
    assert done["status"] == "completed", done
    assert done["result"] == {"answers": ["yes"], "name": "bob", "tty": True}
    logs = hived.api("GET", f"/tasks/{task['id']}/logs")
    assert "hello bob" in logs and "Proceed? [y/n] yes" in logs
    kinds = [e.get("kind") for e in _events(hived) if e.get("task_id") == task["id"]]
    assert (
        kinds.index("task.waiting_input") < kinds.index("task.input_received") < kinds.index("task.completed")
    )
    wait_for(lambda: f"hive-{task['id']}" not in sessions(hived, "talker"), what="the session gone")


def test_two_sessions_of_one_agent_at_once_each_get_their_own_answer(hived: Hived, tmp_path: Path) -> None:
    talker(hived, tmp_path, max_concurrency=2)
    first, second = (
        hived.submit("ask", payload={"name": name, "questions": ["Ok? [y/n] "]}) for name in ("one", "two")
    )
    for task in (first, second):
        wait_for(lambda t=task: hived.task(t["id"])["status"] == "waiting_input", what="both at their prompt")
    assert hivectl(hived, "task", "send", second["id"], "second").returncode == 0
    assert hived.wait_task(second["id"])["result"]["answers"] == ["second"]
    # The end of one attempt (and the sweep of what it left) does not touch the other's session.
    assert hived.task(first["id"])["status"] == "waiting_input"
    assert f"hive-{first['id']}" in sessions(hived, "talker")
    assert hivectl(hived, "task", "send", first["id"], "first").returncode == 0
    assert hived.wait_task(first["id"])["result"] == {"answers": ["first"], "name": "one", "tty": True}


def test_a_waiting_task_outlives_a_kill_9_of_hived_and_is_answered_after(
    hived: Hived, tmp_path: Path
) -> None:
    talker(hived, tmp_path)
    task = hived.submit("ask", payload={"name": "di", "questions": ["One? [y/n] ", "Two? [y/n] "]})
    wait_for(lambda: hived.task(task["id"])["status"] == "waiting_input", what="the first prompt")
    hived.kill9()
    hived.start()  # the agent is adopted; the task is still waiting, in the database
    assert hived.task(task["id"])["status"] == "waiting_input"
    wait_for(
        lambda: hivectl(hived, "task", "send", task["id"], "a").returncode == 0, what="send after restart"
    )
    wait_for(  # the event log starts anew with hived: this is the second prompt
        lambda: any(
            e.get("prompt") == "Two? [y/n]" for e in _events(hived) if e.get("task_id") == task["id"]
        ),
        what="waiting at the second prompt",
    )
    assert hived.task(task["id"])["status"] == "waiting_input"
    # The agent's report of the prompt said where the session is: attach finds it again.
    assert hived.api("GET", f"/tasks/{task['id']}/terminal")["session"] == f"hive-{task['id']}"
    assert hivectl(hived, "task", "send", task["id"], "b").returncode == 0
    assert hived.wait_task(task["id"])["result"]["answers"] == ["a", "b"]


def _events(hived: Hived) -> list[dict]:
    text = hived.client.get("/events", params={"follow": "false"}).text
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


def test_a_task_that_never_prompts_times_out_or_stalls_and_a_cancel_ends_a_waiting_task(
    hived: Hived, tmp_path: Path
) -> None:
    talker(hived, tmp_path, "busy", FOREVER)
    slow = hived.submit("work", timeout=1)
    failed = hived.wait_task(slow["id"])
    assert failed["status"] == "failed" and "timed out after 1s" in failed["error"]
    assert f"hive-{slow['id']}" not in sessions(hived, "busy")
    quiet = hived.submit("work", stall_timeout=1, max_attempts=1)  # silence at no prompt: stalled
    stalled = hived.wait_task(quiet["id"])
    assert stalled["status"] == "failed" and "stalled: no output for 1s" in stalled["error"]
    talker(hived, tmp_path)
    asking = hived.submit("ask", payload={"name": "al", "questions": ["Sure? [y/n] "]})
    wait_for(lambda: hived.task(asking["id"])["status"] == "waiting_input", what="the task at its prompt")
    cancelled = hivectl(hived, "task", "cancel", asking["id"])
    assert cancelled.returncode == 0, cancelled.stderr
    assert hived.wait_task(asking["id"])["status"] == "cancelled"
    wait_for(lambda: f"hive-{asking['id']}" not in sessions(hived, "talker"), what="the session killed")


@pytest.fixture
def outer_tmux() -> Iterator[list[str]]:
    """A tmux server of the test's own, standing for the user's terminal."""
    base = [TMUX or "tmux", "-L", f"hive-test-{uuid.uuid4().hex[:8]}", "-f", os.devnull]
    yield base
    subprocess.run([*base, "kill-server"], capture_output=True)


def test_attach_shows_the_terminal_types_into_it_and_detaching_keeps_the_task_running(
    hived: Hived, tmp_path: Path, outer_tmux: list[str]
) -> None:
    talker(hived, tmp_path)
    questions = ["First? [y/n] ", "Second? [y/n] "]
    task = hived.submit("ask", payload={"name": "cy", "questions": questions})
    wait_for(lambda: hived.task(task["id"])["status"] == "waiting_input", what="the first prompt")

    def tmux(*args: str) -> str:
        return subprocess.run([*outer_tmux, *args], capture_output=True, text=True, check=True).stdout

    env = ["env", "-u", "TMUX", f"HIVE_SOCKET={hived.socket}", "TERM=xterm-256color"]
    tmux(
        "new-session",
        "-d",
        "-s",
        "user",
        "-x",
        "120",
        "-y",
        "30",
        *env,
        HIVECTL,
        "task",
        "attach",
        task["id"],
    )
    wait_for(lambda: "First? [y/n]" in tmux("capture-pane", "-p", "-t", "user"), what="the prompt attached")
    tmux("send-keys", "-t", "user", "-l", "no")
    tmux("send-keys", "-t", "user", "Enter")
    screen = wait_for(
        lambda: (text := tmux("capture-pane", "-p", "-t", "user")) and "Second? [y/n]" in text and text,
        what="the handler's next prompt on the attached terminal",
    )
    assert "hello cy" in screen and "First? [y/n] no" in screen
    tmux("send-keys", "-t", "user", "C-b", "d")  # detach: hivectl returns, the outer pane closes
    wait_for(
        lambda: subprocess.run([*outer_tmux, "has-session", "-t", "user"], capture_output=True).returncode,
        what="hivectl task attach to return on detach",
    )
    wait_for(lambda: hived.task(task["id"])["status"] == "waiting_input", what="the second prompt")
    assert f"hive-{task['id']}" in sessions(hived, "talker")
    assert hivectl(hived, "task", "send", task["id"], "yes").returncode == 0
    done = hived.wait_task(task["id"])
    assert done["status"] == "completed" and done["result"]["answers"] == ["no", "yes"]


def test_bad_input_is_refused_naming_the_field_or_the_task(hived: Hived, tmp_path: Path) -> None:
    doc = tmp_path / "agent.yaml"
    doc.write_text(
        "kind: Agent\nname: bad\nhandler:\n  exec: [cat]\n  tty: true\n  prompt_pattern: '([a-z'\n"
    )
    applied = hivectl(hived, "apply", "-f", str(doc))
    assert applied.returncode == 1
    assert "prompt_pattern" in applied.stderr and "not a valid regular expression" in applied.stderr
    refused = hived.client.post("/agents", json={"name": "bad", "handler": {"python": "m:f", "tty": True}})
    assert refused.status_code == 422 and "tty: true needs an exec handler" in refused.text
    assert hived.api("GET", "/agents")["total"] == 0  # nothing was created

    hived.spawn("plain", {"exec": [sys.executable, "-c", "import time; time.sleep(3600)"]})
    task = hived.submit("work")
    wait_for(lambda: hived.task(task["id"])["status"] == "running", what="the plain task running")
    sent = hivectl(hived, "task", "send", task["id"], "yes")
    assert sent.returncode == 1
    assert f"task {task['id']} is not interactive" in sent.stderr and "tty: true" in sent.stderr
    attach = hivectl(hived, "task", "attach", task["id"])
    assert attach.returncode == 1 and "is not interactive" in attach.stderr
    hived.api("PUT", f"/tasks/{task['id']}/cancel")
    hived.wait_task(task["id"])
    ended = hivectl(hived, "task", "send", task["id"], "yes")
    assert (
        ended.returncode == 1 and "is cancelled: only a running interactive task takes input" in ended.stderr
    )
    newline = hived.client.post(f"/tasks/{task['id']}/input", json={"text": "a\nb"})
    assert newline.status_code == 422 and "text" in newline.text and "no newline" in newline.text
