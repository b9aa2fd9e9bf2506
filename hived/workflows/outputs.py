"""A run's `outputs`: the workflow's `outputs:` rendered over its steps when it succeeds, kept with the
run (the result of the `workflow:` step that started it, if any)."""

from __future__ import annotations

from datetime import datetime

from hived.model.expressions import ExpressionError
from hived.model.states import RunStatus
from hived.workflows.live import LiveRun
from hived.workflows.templates import render


def succeed(run: LiveRun, now: datetime) -> None:
    """The run succeeded, with its outputs; an output that cannot be rendered fails it instead."""
    if run.spec.outputs:
        try:
            run.run_values["outputs"] = render(run.spec.outputs, run.variables())
        except ExpressionError as exc:
            run.end(RunStatus.FAILED, f"outputs: {exc}", now)
            return
    run.end(RunStatus.SUCCEEDED, None, now)
