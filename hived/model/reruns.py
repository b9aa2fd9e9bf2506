"""Which steps a rerun runs again (`hivectl workflow rerun RUN [--from STEP]`); the others keep the
results they had. Pure; table-tested in tests/unit/test_reruns.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SUCCEEDED = "succeeded"


def steps_to_rerun(
    needs: Mapping[str, Sequence[str]], statuses: Mapping[str, str], from_step: str | None = None
) -> set[str]:
    """`from_step` (if any), every step that did not succeed, and every step that follows one of
    them; `needs`: step -> the steps it needs, `statuses`: step -> its status in the first run."""
    dependents: dict[str, list[str]] = {step: [] for step in needs}
    for step, wanted in needs.items():
        for need in wanted:
            dependents.setdefault(need, []).append(step)
    todo = [step for step in needs if statuses.get(step) != SUCCEEDED]
    if from_step is not None:
        todo.append(from_step)
    again: set[str] = set()
    while todo:
        step = todo.pop()
        if step not in again:
            again.add(step)
            todo.extend(dependents.get(step, []))
    return again
