"""The schedule routes of hived (`kind: Schedule`) as `Call` descriptions, beside hivectl.client.routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hivectl.client.routes import Call, _model, _ref

if TYPE_CHECKING:
    from hived.model.schedules import AppliedSchedule, Fired, ScheduleInfo, ScheduleList, ScheduleSpec


class ScheduleRoutes:
    @staticmethod
    def apply_schedule(spec: ScheduleSpec) -> Call[AppliedSchedule]:
        body = spec.model_dump(mode="json", exclude_none=True)
        return Call("PUT", f"/schedules/{_ref(spec.name)}", _model("AppliedSchedule"), body=body)

    @staticmethod
    def list_schedules() -> Call[ScheduleList]:
        return Call("GET", "/schedules", _model("ScheduleList"))

    @staticmethod
    def get_schedule(name: str) -> Call[ScheduleInfo]:
        return Call("GET", f"/schedules/{_ref(name)}", _model("ScheduleInfo"))

    @staticmethod
    def schedule_verb(name: str, verb: str) -> Call[ScheduleInfo]:
        """`pause` or `resume`."""
        return Call("POST", f"/schedules/{_ref(name)}/{verb}", _model("ScheduleInfo"))

    @staticmethod
    def trigger_schedule(name: str) -> Call[Fired]:
        return Call("POST", f"/schedules/{_ref(name)}/trigger", _model("Fired"))

    @staticmethod
    def delete_schedule(name: str) -> Call[ScheduleInfo]:
        return Call("DELETE", f"/schedules/{_ref(name)}", _model("ScheduleInfo"))
