"""hive-agent's command line: how it decides between spawned and external, builds an external agent's
definition from flags or a file, and refuses bad input with one line and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hivectl.agent.main import build_parser, main, registration

PROG = [sys.executable, "-m", "hivectl.agent.main"]


@pytest.fixture(autouse=True)
def _not_spawned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIVE_AGENT_ID", raising=False)
    monkeypatch.delenv("HIVE_AGENT_INCARNATION", raising=False)


def request_for(*argv: str):  # noqa: ANN201 - a RegisterRequest
    return registration(build_parser().parse_args(list(argv)))


def test_exec_takes_everything_after_it() -> None:
    req = request_for(
        "--name", "lint-1", "--cap", "py", "--cap", "lint", "--exec", "ruff", "check", "--fix", "-q"
    )
    assert req.spec is not None and req.agent_id is None
    assert req.spec["handler"] == {"exec": ["ruff", "check", "--fix", "-q"]}
    assert req.spec["capabilities"] == ["lint", "py"]
    assert req.pid == os.getpid() and req.hostname


def test_flags_of_an_external_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    req = request_for(
        "--name",
        "rev",
        "--type",
        "reviewer",
        "--max-concurrency",
        "3",
        "--workdir",
        "work",
        "--heartbeat-interval",
        "500ms",
        "--python",
        "hivectl.agent.builtin:echo",
    )
    spec = req.spec
    assert spec is not None
    assert (spec["type"], spec["max_concurrency"], spec["heartbeat_interval"]) == ("reviewer", 3, 0.5)
    assert spec["workdir"] == str(tmp_path / "work")  # made absolute: hived runs elsewhere
    assert spec["handler"] == {"python": "hivectl.agent.builtin:echo"}


def test_an_agent_document(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "kind: Agent\nname: reviewer\ncapabilities: [python]\nworkdir: checkouts\n"
        'handler:\n  exec: ["python3", "review.py"]\nheartbeat_interval: 2s\n'
    )
    spec = request_for("-f", str(path)).spec
    assert spec is not None and spec["name"] == "reviewer" and spec["heartbeat_interval"] == 2.0
    assert spec["workdir"] == str(tmp_path / "checkouts")  # relative to the file, as hivectl apply does
    assert spec["handler"] == {"exec": ["python3", "review.py"]}


def test_spawned_by_hived(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIVE_AGENT_ID", "0b7d")
    monkeypatch.setenv("HIVE_AGENT_INCARNATION", "4")
    req = request_for()
    assert (req.agent_id, req.incarnation, req.spec) == ("0b7d", 4, None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        ([], "give --name"),
        (["--name", "x"], "give a handler"),
        (["--name", "x", "--exec"], "--exec needs a program"),
        (["--name", "x", "--python", "m:f", "--exec", "ls"], "give one handler"),
        (["--name", "Bad Name", "--exec", "ls"], "--name: must be 1-63 lowercase"),
        (["--name", "x", "--max-concurrency", "0", "--exec", "ls"], "--max-concurrency:"),
        (["--name", "x", "--max-concurrency", "z", "--exec", "ls"], "invalid int value: 'z'"),
        (["--name", "x", "--heartbeat-interval", "soon", "--exec", "ls"], "--heartbeat-interval: 'soon'"),
        (["--name", "x", "--python", "not-a-target"], "--exec/--python: "),
        (["-f", "agent.yaml", "--name", "x"], "-f cannot be combined with --name"),
        (["-f", "/nonexistent/agent.yaml"], "/nonexistent/agent.yaml: No such file"),
        (["--token-file", "/nonexistent/token", "--name", "x", "--exec", "ls"], "--token-file: No such file"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hive-agent: error: ")
    assert message in err


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            "kind: Agent\nname: a\nhandler: {exec: [ls]}\ncapabilites: [x]\n",
            "agent.yaml:4: unknown key 'capabilites'",
        ),
        ("kind: Agent\nname: a\n", "handler: required"),
        ("kind: Agent\nname: a\nreplicas: 2\nhandler: {exec: [ls]}\n", "replicas"),
        (
            "kind: Agent\nname: a\nhandler: {exec: [ls]}\n---\nkind: Agent\nname: b\nhandler: {exec: [ls]}\n",
            "exactly one document",
        ),
    ],
)
def test_bad_agent_documents(
    document: str,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "agent.yaml").write_text(document)
    with pytest.raises(SystemExit) as exit_info:
        main(["-f", "agent.yaml"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_handler_that_does_not_load_exits_1_before_registering(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*PROG, "--socket", str(tmp_path / "none.sock"), "--name", "x", "--python", "hive_nowhere:fn"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("HIVE_")},
    )
    assert proc.returncode == 1
    assert "cannot load handler" in proc.stderr and "hive_nowhere" in proc.stderr
    assert "unreachable" not in proc.stderr  # it never tried to reach hived


def test_sigterm_while_hived_is_unreachable_exits_0(tmp_path: Path) -> None:
    with subprocess.Popen(
        [*PROG, "--socket", str(tmp_path / "none.sock"), "--name", "x", "--exec", "true"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("HIVE_")},
    ) as proc:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the agent retries; this line says so
        assert "hived unreachable" in first
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        assert "SIGTERM" in proc.stderr.read()


def test_a_spawned_agent_imports_neither_pydantic_nor_httpx() -> None:
    """Every agent process runs hive-agent: it keeps to the standard library (and psutil) so that an
    idle agent stays small. External agents import pydantic only to check their own definition."""
    import subprocess
    import sys

    probe = (
        "import sys, hivectl.agent.main, hivectl.agent.runtime, hivectl.agent.exec_handler, "
        "hivectl.agent.python_handler, hivectl.agent.builtin\n"
        "heavy = {'pydantic', 'httpx', 'yaml', 'celpy', 'rich'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
