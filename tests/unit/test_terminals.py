"""Interactive agents, the pure parts: the handler's terminal options (a bad regex refused naming the
field), the `waiting_input` moves of the task state machine, the line `task send` may type, who may
call the new routes, and how terminal output becomes the attempt's text and result."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from hivectl.agent.tty_options import TtyOptions
from hivectl.agent.tty_watch import last_line, plain, result_text
from hivectl.cli.common import CliError
from hivectl.cli.task_terminal import attach_argv
from hived.auth.scopes import Scope, allows
from hived.model.schemas import AgentSpec
from hived.model.states import IllegalTransition, TaskStatus
from hived.model.terminals import TaskInput

T = TaskStatus


def agent(handler: dict) -> AgentSpec:
    return AgentSpec.model_validate({"name": "a", "handler": handler})


def test_terminal_options_are_checked_and_named() -> None:
    spec = agent({"exec": ["x"], "tty": True, "prompt_pattern": r"\[y/n\] $", "input_timeout": "45s"})
    assert spec.handler is not None and spec.handler.input_timeout == 45.0
    options = TtyOptions.from_spec(spec.handler.model_dump(exclude_none=True))
    assert options is not None and options.input_timeout == 45.0 and options.prompt is not None
    assert options.prompt.search("Go on? [y/n] ")
    assert TtyOptions.from_spec({"exec": ["x"]}) is None
    assert agent({"exec": ["x"]}).handler.model_dump(exclude_none=True) == {"exec": ["x"]}  # type: ignore[union-attr]
    with pytest.raises(ValidationError) as bad:
        agent({"exec": ["x"], "tty": True, "prompt_pattern": "([a-z"})
    error = bad.value.errors()[0]
    assert error["loc"] == ("handler", "prompt_pattern") and "not a valid regular expression" in error["msg"]
    for handler, message in [
        ({"python": "m:f", "tty": True}, "tty: true needs an exec handler"),
        ({"exec": ["x"], "prompt_pattern": "x"}, "need tty: true"),
        ({"exec": ["x"], "tty": True, "input_timeout": "0s"}, "between 0.1s and 24h"),
    ]:
        with pytest.raises(ValidationError, match=message):
            agent(handler)


def test_waiting_input_moves() -> None:
    assert T.RUNNING.transition(T.WAITING_INPUT) == T.WAITING_INPUT
    for end in (T.RUNNING, T.COMPLETED, T.FAILED, T.CANCELLED, T.RETRYING, T.PENDING):
        assert T.WAITING_INPUT.transition(end) == end
    for start in (T.PENDING, T.ASSIGNED, T.COMPLETED, T.RETRYING):
        with pytest.raises(IllegalTransition):
            start.transition(T.WAITING_INPUT)
    assert not T.WAITING_INPUT.final


def test_a_line_of_input_is_one_line() -> None:
    assert TaskInput(text="yes\tplease").text == "yes\tplease"
    for text in ("a\nb", "a\rb", "\x1b[A", "x" * 4097):
        with pytest.raises(ValidationError):
            TaskInput(text=text)


def test_who_may_type_and_report() -> None:
    assert {s for s in Scope if allows(s, "POST", "/tasks/t/input")} == {Scope.OPERATOR, Scope.ADMIN}
    assert {s for s in Scope if allows(s, "POST", "/agents/x/terminal")} == {Scope.AGENT, Scope.ADMIN}
    assert allows(Scope.READ, "GET", "/tasks/t/terminal")


def test_terminal_output_as_text_and_result() -> None:
    raw = '\x1b[1mhello\x1b[0m\r\nProceed? [y/n] yes\r\n{"answer": "yes"}\r\n'
    assert plain(raw) == 'hello\nProceed? [y/n] yes\n{"answer": "yes"}\n'
    assert last_line(raw) == '{"answer": "yes"}'
    assert result_text(raw) == '{"answer": "yes"}'
    assert result_text("no json here\r\n") == "no json here\n"
    assert last_line("Name? ") == "Name? "


def test_the_readme_example_is_a_valid_agent() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    part = readme[readme.index("### Interactive agents\n") :]
    block = re.search(r"```yaml\n(.*?)```", part, re.S)
    assert block is not None
    doc = yaml.safe_load(block.group(1))
    assert doc.pop("kind") == "Agent"
    handler = AgentSpec.model_validate(doc).handler
    assert handler is not None and handler.tty and handler.input_timeout == 30.0
    assert re.search(handler.prompt_pattern or "", "Apply the fix? [y/n] ")


def test_attach_says_where_the_session_is_when_it_is_not_here(tmp_path: Path) -> None:
    with pytest.raises(CliError, match=r"task t1 runs on host 'build-1', not here .*on build-1"):
        attach_argv("build-1", "/x/tmux.sock", "hive-t1", "t1")
    here = socket.gethostname()
    with pytest.raises(CliError, match="its tmux socket /nowhere/tmux.sock is not on this machine"):
        attach_argv(here, "/nowhere/tmux.sock", "hive-t1", "t1")
    sock = tmp_path / "tmux.sock"
    sock.touch()
    assert attach_argv(here, str(sock), "hive-t1", "t1")[-4:] == [
        str(sock),
        "attach-session",
        "-t",
        "=hive-t1",
    ]
