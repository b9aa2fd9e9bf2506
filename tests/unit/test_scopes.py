"""The scope table (pure): who may call what over TCP."""

from __future__ import annotations

import pytest

from hived.auth.scopes import Scope, allows, required

R, OP, A, G = Scope.READ, Scope.OPERATOR, Scope.ADMIN, Scope.AGENT


@pytest.mark.parametrize(
    ("method", "path", "may"),
    [
        ("GET", "/tasks/abc", {R, OP, A}),
        ("POST", "/tasks/batch", {OP, A}),
        ("DELETE", "/agents/x", {OP, A}),
        ("PUT", "/agents/x", {A}),
        ("GET", "/tokens", {A}),
        ("DELETE", "/tokens/1", {A}),
        ("POST", "/agents/x/work", {G, A}),
        ("POST", "/tasks/t/complete", {G, A}),
        ("PUT", "/runs/r/context/k", {OP, A, G}),
        ("POST", "/runs/r/steps/s/approve", {OP, A}),
        ("PATCH", "/tasks/x", {A}),  # unknown: only an admin gets past the gate (to a 405)
    ],
)
def test_scope_table(method: str, path: str, may: set[Scope]) -> None:
    assert {s for s in Scope if allows(s, method, path)} == may


def test_every_get_needs_at_least_read() -> None:
    assert required("GET", "/anything/at/all") == (Scope.READ, False)
