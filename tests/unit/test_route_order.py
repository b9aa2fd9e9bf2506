"""The routers go hot ones first (hived/http/app.py, ROUTERS), which is safe only while no route's
path is also matched by a route before it: every route must be the first to match its own paths."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Match, Route

from hived.http.app import ROUTERS

ROUTES = [route for router in ROUTERS for route in router.routes if isinstance(route, Route)]
# Values for a path parameter, among them every literal segment a route has (the collisions to fear).
FILLS = sorted({"x1", *(seg for r in ROUTES for seg in r.path.split("/") if seg and "{" not in seg)})


def first_match(method: str, path: str) -> Route | None:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    return next((r for r in ROUTES if r.matches(scope)[0] == Match.FULL), None)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{sorted(r.methods or [])[0]} {r.path}")
def test_each_route_is_the_first_to_match_its_paths(route: Route) -> None:
    for method in route.methods or ():
        for fill in FILLS:
            path = re.sub(r"\{[^}]+\}", fill, route.path)
            if (
                route.matches({"type": "http", "method": method, "path": path, "root_path": ""})[0]
                != Match.FULL
            ):
                continue  # a parameter with a pattern this value does not fit
            assert first_match(method, path) is route, f"{method} {path} is taken by an earlier route"


def test_the_hot_routes_come_first() -> None:
    assert ROUTES[0].path == "/tasks"
    # 16: the task router's literal routes (bulk cancel/retry, pause/resume) come before it; each
    # fails its regex at the path's second character, a fraction of a microsecond.
    assert [r.path for r in ROUTES].index("/agents/{agent_id}/work") < 16
