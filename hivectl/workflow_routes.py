"""The workflow and run routes as `Call`s: `client.send(WorkflowRoutes.get_run(ref))` works on the
sync and the async client alike."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from hivectl.client import Call, _model, _params, _ref
from hived.model.runs import AppliedWorkflow, ContextEntry, Run, RunList, WorkflowInfo, WorkflowList
from hived.model.workflow import WorkflowSpec

_ENTRIES = TypeAdapter(list[ContextEntry])


class WorkflowRoutes:
    @staticmethod
    def apply(spec: WorkflowSpec) -> Call[AppliedWorkflow]:
        return Call(
            "POST",
            "/workflows",
            _model(AppliedWorkflow),
            body=spec.model_dump(mode="json", exclude_none=True),
        )

    @staticmethod
    def list() -> Call[WorkflowList]:
        return Call("GET", "/workflows", _model(WorkflowList))

    @staticmethod
    def get(ref: str, version: int | None = None) -> Call[WorkflowInfo]:
        return Call("GET", f"/workflows/{_ref(ref)}", _model(WorkflowInfo), params=_params(version=version))

    @staticmethod
    def execute(ref: str, params: dict[str, Any]) -> Call[Run]:
        return Call("POST", f"/workflows/{_ref(ref)}/execute", _model(Run), body={"params": params})

    @staticmethod
    def list_runs(
        status: str | None = None, workflow: str | None = None, limit: int | None = None
    ) -> Call[RunList]:
        return Call(
            "GET", "/runs", _model(RunList), params=_params(status=status, workflow=workflow, limit=limit)
        )

    @staticmethod
    def get_run(ref: str) -> Call[Run]:
        return Call("GET", f"/runs/{_ref(ref)}", _model(Run))

    @staticmethod
    def cancel_run(ref: str) -> Call[Run]:
        return Call("POST", f"/runs/{_ref(ref)}/cancel", _model(Run))

    @staticmethod
    def decide(ref: str, step: str, approve: bool, by: str | None, comment: str | None) -> Call[Run]:
        verb = "approve" if approve else "reject"
        body = _params(by=by, comment=comment)
        return Call("POST", f"/runs/{_ref(ref)}/steps/{_ref(step)}/{verb}", _model(Run), body=body)

    @staticmethod
    def context(ref: str) -> Call[list[ContextEntry]]:
        return Call("GET", f"/runs/{_ref(ref)}/context", lambda resp: _ENTRIES.validate_python(resp.json()))

    @staticmethod
    def get_context(ref: str, key: str) -> Call[ContextEntry]:
        return Call("GET", f"/runs/{_ref(ref)}/context/{_ref(key)}", _model(ContextEntry))

    @staticmethod
    def put_context(ref: str, key: str, value: Any, expected_version: int | None) -> Call[ContextEntry]:
        body = {"value": value, **_params(expected_version=expected_version)}
        return Call("PUT", f"/runs/{_ref(ref)}/context/{_ref(key)}", _model(ContextEntry), body=body)
