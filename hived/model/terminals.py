"""Interactive agents (`tty: true` exec handlers): the handler's terminal options, what an agent
reports about an attempt's terminal, and the line `hivectl task send` types into it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from hived.model.fields import Duration, Strict

MAX_INPUT_CHARS = 4096


class TerminalOptions(Strict):
    """The `tty`, `prompt_pattern` and `input_timeout` of an exec handler."""

    tty: bool | None = Field(
        default=None, description="run the handler in a pseudo-terminal in a tmux session"
    )
    prompt_pattern: str | None = Field(
        default=None, description="a regex: a quiet last line matching it means the handler waits for input"
    )
    input_timeout: Duration | None = Field(
        default=None, description="quiet this long at a prompt: waiting_input (default 30s)"
    )

    @field_validator("prompt_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value or len(value) > 1000:
            raise ValueError("must be a regular expression of 1 to 1000 characters")
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("input_timeout")
    @classmethod
    def _timeout(cls, value: float | None) -> float | None:
        if value is not None and not 0.1 <= value <= 86400:
            raise ValueError("must be between 0.1s and 24h")
        return value

    @model_validator(mode="after")
    def _needs_tty(self) -> TerminalOptions:
        if (self.prompt_pattern is not None or self.input_timeout is not None) and not self.tty:
            raise ValueError("prompt_pattern and input_timeout need tty: true")
        if self.tty and getattr(self, "exec", None) is None:
            raise ValueError("tty: true needs an exec handler")
        return self


class TerminalReport(Strict):
    """`POST /agents/{id}/terminal`: where an attempt's session is, or that it waits for input."""

    incarnation: int
    task_id: str
    lease: int
    event: Literal["started", "waiting", "running"]
    socket: str | None = Field(default=None, max_length=4096)
    session: str | None = Field(default=None, max_length=200)
    host: str | None = Field(default=None, max_length=255)
    prompt: str | None = Field(default=None, max_length=1000)


class TerminalInput(BaseModel):
    """A line for an attempt's terminal, as hived hands it to the agent."""

    task_id: str
    text: str


class TaskInput(Strict):
    """`POST /tasks/{id}/input`: a line typed into the task's terminal, then Enter."""

    text: str = Field(max_length=MAX_INPUT_CHARS)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in value):
            raise ValueError("one line of text: no newline or other control character")
        return value


class Terminal(BaseModel):
    """`GET /tasks/{id}/terminal`: where to attach to a running interactive task."""

    task_id: str
    status: str
    agent: str
    host: str
    socket: str
    session: str
