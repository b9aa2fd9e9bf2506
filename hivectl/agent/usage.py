"""Usage a handler reports while it runs, on the agent's side (standard library only).

An exec handler prints increments on stdout, one per line:
    ::hive-usage {"cost_usd": 0.02, "input_tokens": 900, "output_tokens": 120, "model": "m"}
`UsageLines` takes those lines out of stdout as it streams (they are not part of the result nor of
its JSON parsing) and hands each increment on; a malformed one is ignored, with one warning per
attempt in the attempt's output. A python handler calls `hivectl.agent.report_usage(...)`.

`UsageBook` keeps the increments until hived has them: they go in numbered batches (per attempt,
from 1) with the heartbeats, and all that hived has not answered for when the attempt ends goes
with its result. A batch,
once sent, is never changed: sent again after a failed request, it carries the same number, and
hived records each (lease, seq) once."""

from __future__ import annotations

import contextvars
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PREFIX = "::hive-usage"
MAX_LINE = 4096  # a longer usage line is malformed (and not held in memory)
MAX_TOKENS = 10**15
MAX_COST_USD = 1e9
COUNTS = ("input_tokens", "output_tokens")
Increment = dict[str, Any]
Sink = Callable[[Increment], None]


def check_usage(data: Any) -> Increment:
    """An increment from a mapping; ValueError naming the field when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object {input_tokens, output_tokens, cost_usd, model}")
    unknown = sorted(set(data) - {*COUNTS, "cost_usd", "model"})
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (known: input_tokens, output_tokens, cost_usd, model)")
    out: Increment = {}
    for name in COUNTS:
        value = data.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}: must be a whole number of tokens, not {value!r}")
        if not 0 <= value <= MAX_TOKENS:
            raise ValueError(f"{name}: must be between 0 and {MAX_TOKENS}, not {value}")
        out[name] = value
    cost = data.get("cost_usd", 0.0)
    if isinstance(cost, bool) or not isinstance(cost, int | float) or not math.isfinite(cost):
        raise ValueError(f"cost_usd: must be a number of dollars, not {cost!r}")
    if not 0 <= cost <= MAX_COST_USD:
        raise ValueError(f"cost_usd: must be between 0 and {MAX_COST_USD:g}, not {cost}")
    out["cost_usd"] = float(cost)
    model = data.get("model")
    if model is not None and (not isinstance(model, str) or not 1 <= len(model) <= 200):
        raise ValueError(f"model: must be a name of 1-200 characters, not {model!r}")
    out["model"] = model
    return out


def parse_line(line: str) -> Increment:
    """The increment of one `::hive-usage {...}` line (without its newline); ValueError if malformed."""
    body = line[len(PREFIX) :]
    if body[:1] not in (" ", "\t"):
        raise ValueError(f"expected '{PREFIX} {{...}}'")
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    return check_usage(data)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class UsageLines:
    """A filter over an exec handler's stdout as it streams: `feed` returns the text that is not a
    usage line (for the result), in the same order; each usage line becomes an increment (`sink`), a
    malformed one a warning (`warn`, once). A line is a usage line when it starts with PREFIX."""

    def __init__(self, sink: Sink, warn: Callable[[str], None]) -> None:
        self.sink, self.warn = sink, warn
        self.at_line_start = True
        self.held = ""  # the start of a line that may be a usage line
        self.usage_line: list[str] | None = None  # the parts of a usage line being read
        self.usage_chars = 0
        self.warned = False
        self.ignored = 0

    def feed(self, text: str) -> str:
        kept: list[str] = []
        position, size = 0, len(text)
        while position < size:
            if self.usage_line is not None or self.held or (self.at_line_start and text[position] == ":"):
                position = self._one(text, position, kept)  # a line that may be a usage line
                continue
            # Up to the next line that starts with ':' (the only ones that may be usage lines).
            found = text.find("\n:", position)
            if found < 0:
                kept.append(text[position:])
                self.at_line_start = text.endswith("\n")
                break
            kept.append(text[position : found + 1])
            position, self.at_line_start = found + 1, True
        return kept[0] if len(kept) == 1 else "".join(kept)

    def _one(self, text: str, position: int, kept: list[str]) -> int:
        """Consume from `position` up to the end of one line (or of the text); returns where it ends."""
        end = text.find("\n", position)
        stop = len(text) if end < 0 else end + 1
        piece = text[position:stop]
        if self.usage_line is not None:
            self._usage_part(piece)
        elif self.at_line_start or self.held:
            start = self.held + piece
            if PREFIX.startswith(start.rstrip("\n")) and not start.endswith("\n"):
                self.held = start  # too short to tell yet
                return stop
            self.held = ""
            if start.startswith(PREFIX):
                self.usage_line, self.usage_chars = [], 0
                self._usage_part(start)
            else:
                kept.append(start)
        else:
            kept.append(piece)
        self.at_line_start = piece.endswith("\n")
        return stop

    def _usage_part(self, piece: str) -> None:
        assert self.usage_line is not None
        self.usage_chars += len(piece)
        if self.usage_chars <= MAX_LINE:
            self.usage_line.append(piece)
        if piece.endswith("\n"):
            self._usage_done()

    def _usage_done(self) -> None:
        assert self.usage_line is not None
        line, chars = "".join(self.usage_line).rstrip("\r\n"), self.usage_chars
        self.usage_line = None
        try:
            if chars > MAX_LINE:
                raise ValueError(f"longer than {MAX_LINE} characters")
            increment = parse_line(line)
        except ValueError as exc:
            self._malformed(str(exc))
        else:
            self.sink(increment)

    def _malformed(self, why: str) -> None:
        self.ignored += 1
        if not self.warned:
            self.warned = True
            self.warn(
                f"[hive-agent] warning: ignored a malformed {PREFIX} line ({why}); further malformed "
                f"{PREFIX} lines of this attempt are ignored without a warning\n"
            )

    def finish(self) -> str:
        """At the end of stdout: a usage line without its newline still counts; held text is kept."""
        if self.usage_line is not None:
            self._usage_done()
        held, self.held = self.held, ""
        if held.startswith(PREFIX):
            self.usage_line, self.usage_chars = [held], len(held)
            self._usage_done()
            return ""
        return held


# --- python handlers ----------------------------------------------------------------------------

CURRENT: contextvars.ContextVar[Sink | None] = contextvars.ContextVar("hive_usage_sink", default=None)


def report_usage(
    input_tokens: int = 0, output_tokens: int = 0, cost_usd: float = 0.0, model: str | None = None
) -> None:
    """Report an increment of spend from a python handler (as an exec handler's `::hive-usage`
    line does). ValueError naming the field for a negative or non-numeric value; RuntimeError when
    called outside a handler's attempt."""
    sink = CURRENT.get()
    if sink is None:
        raise RuntimeError("report_usage: called outside a task's attempt")
    data: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost_usd,
    }
    if model is not None:
        data["model"] = model
    sink(check_usage(data))


# --- until hived has them -----------------------------------------------------------------------


@dataclass
class Batch:
    task_id: str
    lease: int
    seq: int
    model: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    frozen: bool = False  # sent once: never changed again

    def add(self, increment: Increment) -> None:
        self.input_tokens += increment["input_tokens"]
        self.output_tokens += increment["output_tokens"]
        self.cost_usd += increment["cost_usd"]

    def to_json(self) -> dict[str, Any]:
        body = {
            "task_id": self.task_id,
            "lease": self.lease,
            "seq": self.seq,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
        }
        if self.model is not None:
            body["model"] = self.model
        return body


@dataclass
class UsageBook:
    """The agent's increments not yet acknowledged by hived, in batches per attempt and model."""

    batches: dict[tuple[int, int], Batch] = field(default_factory=dict)  # (lease, seq) -> batch
    sending: set[tuple[int, int]] = field(default_factory=set)
    next_seq: dict[int, int] = field(default_factory=dict)  # running attempts: the next batch number

    def sink(self, task_id: str, lease: int) -> Sink:
        """Where a running attempt's increments go; after its end (a python handler's thread that ran
        on), they are dropped: its last batch went with the result, its numbers are spent."""
        self.next_seq.setdefault(lease, 1)

        def add(increment: Increment) -> None:
            if lease in self.next_seq:
                self.add(task_id, lease, increment)

        return add

    def add(self, task_id: str, lease: int, increment: Increment) -> None:
        for batch in self.batches.values():
            if batch.lease == lease and batch.model == increment["model"] and not batch.frozen:
                batch.add(increment)
                return
        seq = self.next_seq.get(lease, 1)
        self.next_seq[lease] = seq + 1
        batch = Batch(task_id, lease, seq, increment["model"])
        batch.add(increment)
        self.batches[(lease, seq)] = batch

    def take(self) -> list[Batch]:
        """The batches not in a request now, marked as sending (and frozen)."""
        taken = [b for key, b in self.batches.items() if key not in self.sending]
        for batch in taken:
            batch.frozen = True
            self.sending.add((batch.lease, batch.seq))
        return taken

    def settle(self, sent: list[Batch]) -> None:
        """hived answered the request that carried `sent`: it has them."""
        for batch in sent:
            key = (batch.lease, batch.seq)
            self.sending.discard(key)
            self.batches.pop(key, None)

    def release(self, sent: list[Batch]) -> None:
        """The request failed: they go again, unchanged, with the next one."""
        for batch in sent:
            self.sending.discard((batch.lease, batch.seq))

    def take_attempt(self, lease: int) -> list[Batch]:
        """An attempt ended: all its batches leave the book to go with its result, which is sent until
        hived has it (a batch also in a heartbeat under way goes twice; hived records it once). So
        nothing of an ended attempt waits on a heartbeat that a stopping agent would not send."""
        mine = [b for b in self.batches.values() if b.lease == lease]
        for batch in mine:
            batch.frozen = True
            del self.batches[(batch.lease, batch.seq)]
        self.next_seq.pop(lease, None)
        return mine
