"""Schemathesis over hived's own OpenAPI, against a real hived (TCP listener, admin token): no input
it generates may cause a 5xx or an answer that breaks the documented schema. Bounded: a fixed seed
and few examples per operation, so it runs in CI in seconds. Operations that define agents are left
out: their generated `exec` would run generated programs."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.security.test_tcp import free_port, token

SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")


@pytest.mark.skipif(
    not Path(SCHEMATHESIS).exists(), reason="schemathesis is not installed (./install.sh --dev)"
)
@pytest.mark.timeout(600)  # the run's own deadline; it took 91 s of the default 120 with a CPU hog beside
def test_no_5xx_and_no_schema_violations(hived_factory: Any) -> None:
    import subprocess

    port = free_port()
    hived = hived_factory(extra_args=["--listen", f"127.0.0.1:{port}"])
    secret = token(hived, "admin")
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"http://127.0.0.1:{port}/openapi.json",
            "-H",
            f"Authorization: Bearer {secret}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "10",
            "--seed",
            "1",
            "--exclude-operation-id-regex",  # /events is a stream that stays open
            "^(spawn_agent|apply_agent|events_)",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
