"""What `hivectl task` adds for the queue controls: `--label K=V` and `--at TIME` read from the command
line, and the bulk `task cancel|retry --status S [--type T] [--label K=V] [--yes]`, which says how many
tasks match and asks before it acts (unless --yes), then sends as many bounded requests as it takes."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import typer

from hivectl.cli import exitcodes
from hivectl.cli.common import CliError, client, usage_error
from hivectl.cli.output import Output, emit
from hived.model.fields import parse_label
from hived.model.queue import check_bulk_status

MAX_ROUNDS = 1000  # requests of 1,000 tasks each: a million tasks, and never an endless loop


def parse_labels(given: list[str] | None, flag: str = "--label") -> dict[str, str]:
    """`--label K=V`, repeatable; a usage error naming the flag for anything else."""
    labels: dict[str, str] = {}
    for text in given or []:
        try:
            key, value = parse_label(text)
        except ValueError as exc:
            raise usage_error(f"{flag}: {exc}") from None
        labels[key] = value
    return labels


def queue_fields(
    label: list[str] | None, delay: str | None, at: str | None, expires_in: str | None
) -> dict[str, Any]:
    """The fields of a submission that `--label`, `--delay`, `--at` and `--expires-in` give."""
    return {
        "labels": parse_labels(label) or None,
        "delay": delay,
        "at": parse_at(at) if at is not None else None,
        "expires_in": expires_in,
    }


def parse_at(text: str) -> str:
    """`--at`: an ISO 8601 time; one without an offset is this host's local time. Sent with its offset."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise usage_error(
            f"--at: {text!r} is not an ISO 8601 time (like 2026-05-01T09:30:00Z or 2026-05-01 09:30)"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # local time, as `date` and `at` read it
    return when.isoformat()


def describe(status: str, type: str | None, labels: dict[str, str]) -> str:
    parts = [f"status {status}"] + ([f"type {type}"] if type else [])
    return ", ".join(parts + [f"label {k}={v}" for k, v in labels.items()])


def bulk(
    ctx: typer.Context,
    action: str,
    status: str,
    type: str | None,
    labels: dict[str, str],
    yes: bool,
    output: Output,
) -> None:
    """Count the matching tasks, ask (unless `yes`), then act on them in requests of at most 1,000."""
    if problem := check_bulk_status(action, status):
        raise CliError(f"--{problem}")  # as hived would refuse it (422), before anything is read
    cli = client(ctx)
    matching = cli.list_tasks(status=status, type=type, limit=1, labels=labels).total
    what = describe(status, type, labels)
    if matching == 0:
        emit({"action": action, "changed": []}, output, lambda: f"no tasks match ({what})")
        return
    verb = "cancelled" if action == "cancel" else "retried"
    if not yes:  # asked on stderr; the answer is read from stdin (none, as when piped empty: no)
        typer.echo(f"{action} {matching} tasks ({what})? [y/N] ", nl=False, err=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            raise CliError(f"aborted: no task was {verb} (--yes acts without asking)")
    body: dict[str, Any] = {"status": status, "labels": labels, **({"type": type} if type else {})}
    changed: list[str] = []
    for _ in range(MAX_ROUNDS):
        done = cli.bulk_tasks(action, body)
        changed += done.changed
        if done.remaining == 0 or not done.changed:
            break
    emit({"action": action, "changed": changed}, output, lambda: f"{len(changed)} tasks {verb}")
    if not changed:
        raise typer.Exit(exitcodes.FAILURE)
