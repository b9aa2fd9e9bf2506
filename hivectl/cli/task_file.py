"""`hivectl task submit -f FILE`: tasks from a JSON-lines file (or stdin), one `POST /tasks` body per
line, every line checked before anything is sent, then sent through `POST /tasks/batch`.

A batch request is all-or-none on hived's side; a file larger than one request allows is sent as
several, one after the other, so a refusal of a later request leaves the earlier ones submitted (their
ids are printed, and the error says which lines were not submitted).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from hivectl.cli import exitcodes
from hivectl.cli.common import CliError
from hivectl.client import ClientError, format_errors
from hived.model.tasks import TaskSubmit

if TYPE_CHECKING:
    from hivectl.client import Client

# hived takes at most 1,000 tasks per POST /tasks/batch (TaskBatch in hived/tasks/routes.py); a request
# is also held well under max_request_bytes (10 MiB by default), whatever the size of the payloads.
BATCH_TASKS = 1000
BATCH_BYTES = 4 * 2**20


@dataclass(frozen=True)
class Line:
    """A task of the file, and the line it was on."""

    number: int
    spec: TaskSubmit
    size: int  # bytes of its JSON body, as sent


def read_source(name: str) -> tuple[str, str]:
    """The text of `name` (`-`: stdin), and the label errors name it by."""
    label = "<stdin>" if name == "-" else name
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{label}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"{label}: not UTF-8 text") from None
    return text, label


def parse_line(text: str, where: str) -> TaskSubmit:
    """One line: a JSON object with the fields of a `POST /tasks` body."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{where}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise CliError(f'{where}: must be a JSON object like {{"type": "build"}}, not {kind}')
    try:
        return TaskSubmit.model_validate(value)
    except ValidationError as exc:
        raise CliError(f"{where}: {format_errors(exc.errors())}") from None


def load_lines(name: str) -> list[Line]:
    """Every task of the file, each line checked (blank lines skipped); the first bad line is an
    error naming it, and then nothing is sent."""
    text, label = read_source(name)
    lines: list[Line] = []
    keys: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{label}:{number}"
        spec = parse_line(raw, where)
        if (key := spec.idempotency_key) is not None:
            if key in keys:
                raise CliError(f"{where}: idempotency_key: {key!r} is also on line {keys[key]}")
            keys[key] = number
        size = len(spec.model_dump_json(exclude_defaults=True))
        lines.append(Line(number, spec, size))
    if not lines:
        raise CliError(f"{label}: no tasks (one JSON object per line)")
    return lines


def batches(lines: Sequence[Line]) -> Iterator[list[Line]]:
    """The lines in requests of at most BATCH_TASKS tasks and BATCH_BYTES (a larger task goes alone)."""
    batch: list[Line] = []
    size = 0
    for line in lines:
        if batch and (len(batch) == BATCH_TASKS or size + line.size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += line.size
    if batch:
        yield batch


def submit_lines(cli: Client, lines: Sequence[Line]) -> tuple[list[str], CliError | None]:
    """The ids of the tasks submitted, in the file's order, and the error that stopped the sending
    (None: every line was submitted)."""
    ids: list[str] = []
    for batch in batches(lines):
        try:
            submitted = cli.submit_tasks([line.spec for line in batch]).items
        except ClientError as exc:
            first = batch[0].number
            done = f"; the {len(ids)} tasks before it were submitted" if ids else ""
            message = f"{exc} (not submitted: the tasks from line {first} on{done})"
            return ids, CliError(message, exitcodes.for_error(exc))
        ids += [task.id for task in submitted]
    return ids, None
