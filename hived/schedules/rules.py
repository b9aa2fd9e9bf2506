"""The pure rules of schedules, table-tested in tests/unit/test_schedule_rules.py: the next time a
cron expression names (in its time zone), whether a start missed while hived was down is caught up,
and what a start does while the previous run still goes (the overlap policy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from hived.model.schedules import MAX_QUEUED


def next_fire(cron: str, timezone: str, after: datetime) -> datetime:
    """The first time strictly after `after` that `cron` names, read in `timezone`; in UTC."""
    local = after.astimezone(ZoneInfo(timezone))
    return croniter(cron, local).get_next(datetime).astimezone(UTC)  # type: ignore[no-any-return]


def last_fire(cron: str, timezone: str, at: datetime) -> datetime:
    """The latest time at or before `at` that `cron` names; in UTC."""
    local = (at + timedelta(microseconds=1)).astimezone(ZoneInfo(timezone))
    return croniter(cron, local).get_prev(datetime).astimezone(UTC)  # type: ignore[no-any-return]


def on_start(
    cron: str, timezone: str, next_run_at: datetime | None, now: datetime, catchup: float
) -> tuple[bool, datetime]:
    """hived starts with a schedule whose next start was `next_run_at`: (start one now?, the next
    start). A time that passed while hived was down starts once now if it is at most `catchup`
    seconds old (the newest such time counts; several missed times start once); otherwise it is
    dropped."""
    following = next_fire(cron, timezone, now)
    if next_run_at is None or next_run_at > now:
        return False, next_run_at or following
    missed = last_fire(cron, timezone, now)
    caught = catchup > 0 and missed >= next_run_at and (now - missed).total_seconds() <= catchup
    return caught, following


def on_overlap(policy: str, previous_running: bool, queued: int) -> str:
    """What a start does: `start` when nothing runs; else by policy `skip`, `queue` (at most
    MAX_QUEUED waiting, then `skip`) or `cancel_previous` (cancel the running one, then start)."""
    if not previous_running:
        return "start"
    if policy == "queue":
        return "queue" if queued < MAX_QUEUED else "skip"
    return policy
