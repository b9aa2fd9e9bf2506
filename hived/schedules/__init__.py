"""Schedules (`kind: Schedule`): workflows and tasks started at the times of a cron expression."""
