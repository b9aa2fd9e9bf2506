"""hivectl as a user runs it, where no daemon is needed: input checks, exit codes, error lines.

The helpers here (`hivectl`, `clean_env`, `one_error_line`) are shared by the other test_cli_* files.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import REPO

_SCRIPT = Path(sys.executable).parent / "hivectl"
HIVECTL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "hivectl.cli.main"]


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any HIVE_* setting, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HIVE_")}
    env.update(extra)
    return env


def hivectl(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real `hivectl` executable (the console script of this venv)."""
    return subprocess.run(
        [*HIVECTL, *args], env=env, capture_output=True, text=True, input=stdin, timeout=timeout, cwd=REPO
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The failure's stderr, checked to be exactly one `error: ...` line (so never a traceback)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def nowhere(tmp_path: Path) -> dict[str, str]:
    """An environment whose socket does not exist: any attempt to reach hived exits 3."""
    return clean_env(HIVE_STATE_DIR=str(tmp_path / "state"), HIVE_SOCKET=str(tmp_path / "none.sock"))


GOOD = "kind: Agent\nname: fine\nhandler: {python: 'mod:fn'}\n"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"a.yaml": GOOD + "---\nkind: Agent\nname: oops\ncapabilites: [x]\n"},
            "a.yaml:7: unknown key 'capabilites'",
        ),
        (
            {"a.yaml": "kind: Agent\nname: a\nmax_concurrency: lots\n"},
            "a.yaml:3: max_concurrency: Input should be",
        ),
        (
            {"a.yaml": "kind: Agent\nname: a\nheartbeat_interval: soon\n"},
            "a.yaml:3: heartbeat_interval: 'soon'",
        ),
        ({"a.yaml": "kind: Agent\nname: [oops\n"}, "a.yaml:3: YAML syntax error"),
        ({"a.yaml": "kind: Robot\nname: a\n"}, "a.yaml:1: kind: unknown kind 'Robot'"),
        # every file is checked before anything is sent: the bad one may come last
        ({"a.yaml": GOOD, "b.yaml": "kind: Agent\n\nname: Bad\n"}, "b.yaml:3: name: must be"),
        ({"a.yaml": GOOD, "b.yaml": GOOD}, "b.yaml:2: name: Agent 'fine' is also defined at"),
    ],
)
def test_apply_reports_file_and_line_before_connecting(
    nowhere: dict[str, str], tmp_path: Path, files: dict[str, str], message: str
) -> None:
    args = []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        args += ["-f", str(tmp_path / name)]
    result = hivectl("apply", *args, env=nowhere)
    assert result.returncode == 1  # not 3: nothing tried to reach the (absent) daemon
    assert one_error_line(result).startswith(f"error: {tmp_path}/{message}")
    assert result.stdout == ""


def test_apply_from_stdin_names_stdin(nowhere: dict[str, str]) -> None:
    result = hivectl("apply", "-f", "-", env=nowhere, stdin="kind: Agent\nname: a\nrestart:\n  polcy: x\n")
    assert result.returncode == 1
    assert one_error_line(result) == "error: <stdin>:4: restart: unknown key 'polcy'"


def test_apply_of_a_missing_file(nowhere: dict[str, str], tmp_path: Path) -> None:
    result = hivectl("apply", "-f", str(tmp_path / "absent.yaml"), env=nowhere)
    assert result.returncode == 1
    assert one_error_line(result) == f"error: {tmp_path}/absent.yaml: No such file or directory"


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["agent", "list"],
        ["agent", "show", "reviewer"],
        ["agent", "logs", "reviewer"],
        ["task", "list", "-o", "json"],
        ["task", "submit", "build", "--payload", "{}"],
        ["apply", "-f", "-"],
    ],
)
def test_no_daemon_exits_3_and_says_where_it_looked(nowhere: dict[str, str], args: list[str]) -> None:
    result = hivectl(*args, env=nowhere, stdin=GOOD)
    assert result.returncode == 3
    line = one_error_line(result)
    assert nowhere["HIVE_SOCKET"] in line and "hivectl daemon start" in line


def test_no_daemon_over_tcp_exits_3(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = hivectl("--url", f"http://127.0.0.1:{port}", "agent", "list", env=clean_env())
    assert result.returncode == 3
    assert f"http://127.0.0.1:{port}" in one_error_line(result)


def test_daemon_status_and_stop_without_a_daemon(nowhere: dict[str, str]) -> None:
    status = hivectl("daemon", "status", "-o", "json", env=nowhere)
    assert status.returncode == 3
    info = json.loads(status.stdout)
    assert info["status"] == "not reachable" and info["pid"] is None
    assert info["endpoint"] == f"unix:{nowhere['HIVE_SOCKET']}"
    stop = hivectl("daemon", "stop", env=nowhere)
    assert (stop.returncode, stop.stdout.strip()) == (0, "hived is not running")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--payload", "[1, 2]"], 2, "error: --payload: must be a JSON object"),
        (["--payload", "{nope"], 2, "error: --payload: not JSON"),
        (
            ["--payload", "@/nonexistent/payload.json"],
            2,
            "error: --payload: /nonexistent/payload.json: No such file",
        ),
        (["--priority", "12"], 1, "error: --priority: Input should be less than or equal to 9"),
        (["--timeout", "soon"], 1, "error: --timeout: 'soon' is not a duration"),
        (["--max-attempts", "0"], 1, "error: --max-attempts: Input should be greater than or equal to 1"),
        (["--success-when", "result.ok =="], 1, "error: --success-when:"),
        (["--priority", "high"], 2, "error: Invalid value for '--priority'"),
    ],
)
def test_bad_submit_input_is_refused_before_connecting(
    nowhere: dict[str, str], args: list[str], code: int, message: str
) -> None:
    result = hivectl("task", "submit", "build", *args, env=nowhere)
    assert result.returncode == code
    assert one_error_line(result).startswith(message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "x"], "error: give a handler"),
        (["--name", "x", "--python", "m:f", "--exec", "true"], "error: give a handler"),
        (["--python", "m:f"], "error: give --name"),
        (["--name", "x", "--exec", "sh -c 'oops"], "error: --exec: No closing quotation"),
        (["--name", "x", "--python", "m:f", "--env", "NOVALUE"], "error: --env: 'NOVALUE' is not KEY=VALUE"),
        (["-f", "a.yaml", "--name", "x"], "error: give either -f FILE or flags"),
    ],
)
def test_bad_spawn_flags_are_usage_errors(nowhere: dict[str, str], args: list[str], message: str) -> None:
    result = hivectl("agent", "spawn", *args, env=nowhere)
    assert result.returncode == 2
    assert one_error_line(result).startswith(message)


def test_bad_spawn_values_are_refused_before_connecting(nowhere: dict[str, str]) -> None:
    result = hivectl("agent", "spawn", "--name", "Bad Name", "--python", "m:f", env=nowhere)
    assert result.returncode == 1
    assert one_error_line(result) == "error: --name: must be 1-63 lowercase letters, digits, '.', '_' or '-'"


@pytest.mark.parametrize(
    "args",
    [
        ["agent", "list", "-o", "xml"],
        ["task", "list", "--output", "csv"],
        ["status", "-o", "text"],
        ["agent", "lst"],
        ["task", "list", "--limit", "0"],
        ["task", "submit"],
    ],
)
def test_usage_errors_exit_2_on_one_line(nowhere: dict[str, str], args: list[str]) -> None:
    result = hivectl(*args, env=nowhere)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "--help" in line  # points at the help of the command at fault


def test_help_documents_exit_codes_and_environment(nowhere: dict[str, str]) -> None:
    result = hivectl("--help", env={**nowhere, "COLUMNS": "200"})
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for code in ("0 success", "1 failure", "2 usage error", "3 daemon not reachable", "4 not authorized"):
        assert code in text
    for option, env in (("--socket", "HIVE_SOCKET"), ("--url", "HIVE_URL"), ("--token", "HIVE_TOKEN")):
        assert option in text and f"env var: {env}" in text
    for noun in ("daemon", "agent", "task", "apply", "status"):
        assert f" {noun} " in text


class _Canned(BaseHTTPRequestHandler):
    """A stand-in for hived that answers every request with one status and body."""

    status = 401
    body: object = {"detail": "invalid token"}

    def do_GET(self) -> None:
        data = json.dumps(self.body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def canned() -> Iterator[tuple[str, type[_Canned]]]:
    handler = type("Handler", (_Canned,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("status", "body", "code", "line"),
    [
        (
            401,
            {"detail": "invalid token"},
            4,
            "error: not authorized: invalid token (no token: set HIVE_TOKEN or --token)",
        ),
        (403, {"detail": "scope read cannot write"}, 4, "error: not authorized: scope read cannot write"),
        (404, {"detail": "agent 'ghost' not found"}, 1, "error: agent 'ghost' not found"),
        (
            422,
            {"detail": [{"loc": ["body", "max_concurrency"], "msg": "Input should be a valid integer"}]},
            1,
            "error: max_concurrency: Input should be a valid integer",
        ),
        (500, {"detail": "database is locked"}, 1, "error: hived failed (HTTP 500): database is locked"),
    ],
)
def test_api_errors_map_to_exit_codes(
    canned: tuple[str, type[_Canned]], status: int, body: object, code: int, line: str
) -> None:
    url, handler = canned
    handler.status, handler.body = status, body
    token = ["--token", "t0ken"] if status == 403 else []
    result = hivectl("--url", url, *token, "agent", "show", "ghost", env=clean_env())
    assert result.returncode == code
    assert one_error_line(result) == line
