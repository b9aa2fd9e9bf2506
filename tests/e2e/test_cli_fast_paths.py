"""The fast paths of hivectl, against a real hived: `task submit -f` (JSON lines, batched), the global
`--token-file`, and the start-up of the commonest commands (what they import)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli_offline import clean_env, hivectl, one_error_line
from tests.helpers import REPO, Hived
from tests.security.test_tcp import free_port


def lines(*tasks: dict[str, Any] | str) -> str:
    return "".join((task if isinstance(task, str) else json.dumps(task)) + "\n" for task in tasks)


def test_submit_file_queues_every_line(hived: Hived, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        lines({"type": "build", "payload": {"n": 1}}, "", "   ", {"type": "test", "priority": 8})
    )
    result = hivectl("task", "submit", "-f", str(tasks), env=hived.env)
    assert result.returncode == 0, result.stderr
    ids = result.stdout.split()
    assert len(ids) == 2
    first, second = hived.task(ids[0]), hived.task(ids[1])
    assert (first["type"], first["payload"], first["priority"]) == ("build", {"n": 1}, 5)
    assert (second["type"], second["priority"]) == ("test", 8)

    as_json = hivectl("task", "submit", "-f", str(tasks), "-o", "json", env=hived.env)
    assert as_json.returncode == 0, as_json.stderr
    listed = json.loads(as_json.stdout)
    assert isinstance(listed, list) and len(listed) == 2 and not set(listed) & set(ids)
    assert hived.api("GET", "/tasks")["total"] == 4


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ({"type": "x", "priority": 12}, "tasks.jsonl:3: priority: Input should be less than or equal to 9"),
        ({"type": "x", "payload": [1]}, "tasks.jsonl:3: payload: "),
        ({"payload": {}}, "tasks.jsonl:3: type: Field required"),
        ({"type": "x", "colour": "red"}, "tasks.jsonl:3: colour: Extra inputs are not permitted"),
        ('{"type": "x",', "tasks.jsonl:3: not JSON"),
        ("[1, 2]", "tasks.jsonl:3: must be a JSON object"),
        (
            {"type": "x", "idempotency_key": "k1"},
            "tasks.jsonl:3: idempotency_key: 'k1' is also on line 1",
        ),
    ],
)
def test_submit_file_bad_line_names_it_and_sends_nothing(
    hived: Hived, tmp_path: Path, bad_line: dict[str, Any] | str, message: str
) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(lines({"type": "ok", "idempotency_key": "k1"}, {"type": "ok"}, bad_line, {"type": "ok"}))
    result = hivectl("task", "submit", "-f", str(tasks), env=hived.env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert message in one_error_line(result)
    assert result.stdout == ""
    assert hived.api("GET", "/tasks")["total"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["task", "submit", "-f", "/no/such.jsonl"], "/no/such.jsonl: No such file or directory"),
        (["task", "submit", "t", "-f", "-"], "give a TYPE or -f FILE, not both"),
        (["task", "submit", "-f", "-", "--priority", "3"], "--priority: not with -f"),
        (["task", "submit"], "give a task TYPE, or -f FILE"),
    ],
)
def test_submit_file_usage(hived: Hived, args: list[str], message: str) -> None:
    result = hivectl(*args, env=hived.env, stdin=lines({"type": "t"}))
    assert result.returncode in (1, 2)
    assert message in one_error_line(result)
    assert hived.api("GET", "/tasks")["total"] == 0


def test_submit_file_from_stdin_with_wait(hived: Hived) -> None:
    hived.spawn("echoer", {"python": "hivectl.agent.builtin:echo"})
    stdin = lines(*({"type": "echo", "payload": {"i": i}} for i in range(3)))
    result = hivectl("task", "submit", "-f", "-", "--wait", "-o", "json", env=hived.env, stdin=stdin)
    assert result.returncode == 0, result.stderr
    ended = json.loads(result.stdout)
    assert [task["status"] for task in ended] == ["completed"] * 3
    assert [task["payload"] for task in ended] == [{"i": 0}, {"i": 1}, {"i": 2}]

    table = hivectl("task", "submit", "-f", "-", "--wait", env=hived.env, stdin=lines({"type": "echo"}))
    assert table.returncode == 0, table.stderr
    assert "completed" in table.stdout and "echoer" in table.stdout


def test_submit_file_wait_exits_1_when_one_fails(hived: Hived) -> None:
    hived.spawn("failer", {"python": "hivectl.agent.builtin:fail"}, capabilities=["fails"])
    hived.spawn("echoer", {"python": "hivectl.agent.builtin:echo"}, capabilities=["echoes"])
    stdin = lines(
        {"type": "t", "requires": ["echoes"]},
        {"type": "t", "requires": ["fails"], "max_attempts": 1, "payload": {"message": "no"}},
    )
    result = hivectl("task", "submit", "-f", "-", "--wait", "-o", "json", env=hived.env, stdin=stdin)
    assert result.returncode == 1, result.stderr
    assert [task["status"] for task in json.loads(result.stdout)] == ["completed", "failed"]


def test_submit_file_larger_than_a_batch(hived: Hived, tmp_path: Path) -> None:
    tasks = tmp_path / "many.jsonl"
    tasks.write_text(lines(*({"type": "bulk", "payload": {"i": i}} for i in range(1005))))
    result = hivectl("task", "submit", "-f", str(tasks), "-o", "json", env=hived.env)
    assert result.returncode == 0, result.stderr  # one request of 1,005 would be refused (422)
    ids = json.loads(result.stdout)
    assert len(ids) == len(set(ids)) == 1005
    assert hived.task(ids[1004])["payload"] == {"i": 1004}


@pytest.fixture
def tcp_hived(hived_factory: Any) -> tuple[Hived, str]:
    port = free_port()
    hived = hived_factory(extra_args=["--listen", f"127.0.0.1:{port}"])
    return hived, f"http://127.0.0.1:{port}"


def test_token_file(tcp_hived: tuple[Hived, str], tmp_path: Path) -> None:
    hived, url = tcp_hived
    secret = hived.api("POST", "/tokens", json={"scope": "operator"})["token"]
    remote = clean_env(HIVE_URL=url)
    token_file = tmp_path / "token"
    token_file.write_text(f"  {secret}  \nthe second line is not read\n")

    assert hivectl("status", env=remote).returncode == 4  # no token at all
    ok = hivectl("--token-file", str(token_file), "status", "-o", "json", env=remote)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["version"]
    # The file wins over HIVE_TOKEN from the environment, as a command-line option does.
    submitted = hivectl(
        "--token-file", str(token_file), "task", "submit", "t", env=remote | {"HIVE_TOKEN": "hive_wrong"}
    )
    assert submitted.returncode == 0, submitted.stderr

    wrong = tmp_path / "wrong"
    wrong.write_text("hive_not_a_token\n")
    assert hivectl("--token-file", str(wrong), "status", env=remote).returncode == 4

    missing = hivectl("--token-file", str(tmp_path / "nope"), "status", env=remote)
    assert missing.returncode == 2
    assert one_error_line(missing) == f"error: --token-file: {tmp_path / 'nope'}: No such file or directory"
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert "holds no token" in one_error_line(hivectl("--token-file", str(empty), "status", env=remote))
    both = hivectl("--token", secret, "--token-file", str(token_file), "status", env=remote)
    assert both.returncode == 2 and "not both" in one_error_line(both)


# What a command imports, run in-process against the real hived (a subprocess of this test).
IMPORTS = """
import json, sys
from hivectl.cli.main import main
code = main(sys.argv[1:])
heavy = ["hived.model.schemas", "hived.model.tasks", "hived.model.runs", "hived.model.workflow", "yaml",
         "rich", "celpy", "psutil", "httpx", "http.client", "ssl"]
print(json.dumps({"code": code, "loaded": [name for name in heavy if name in sys.modules]}), file=sys.stderr)
"""


def imported_by(env: dict[str, str], *args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS, *args], env=env, capture_output=True, text=True, cwd=REPO, timeout=60
    )
    report = json.loads(result.stderr.splitlines()[-1])
    assert report["code"] == 0, result.stderr
    return list(report["loaded"])


def test_status_and_version_import_little(hived: Hived) -> None:
    assert imported_by(hived.env, "status", "-o", "json") == []
    assert imported_by(hived.env, "status") == []  # piped: its table as plain text
    assert imported_by(hived.env, "--version") == []
    submit = imported_by(hived.env, "task", "submit", "t", "-o", "json")
    assert submit == ["hived.model.tasks"]  # the submission is checked before it is sent
    # (over the Unix socket the client needs neither httpx nor http.client: hivectl/client/unix_http.py)


def test_help_lists_every_command() -> None:
    result = hivectl("--help", env=clean_env())
    assert result.returncode == 0
    for command in ("apply", "events", "tui", "status", "daemon", "agent", "task", "workflow", "token"):
        assert f" {command} " in result.stdout
    assert "--token-file" in result.stdout
    assert hivectl("--version", env=clean_env()).stdout.startswith("hivectl ")
