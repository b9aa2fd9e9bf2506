"""Regression tests of the hardening issue, storage and start-up items: each is named after its item
and failed before the fix (a spin, a silent TLS listener, a world-readable database)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli_offline import clean_env, hivectl
from tests.helpers import REPO, Hived, wait_for
from tests.security.test_tcp import free_port

# 9 anchors x 10 aliases = 90 aliases (under the limit of 100) that expand to 10^10 nodes.
LAUGHS = "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)
)


def hived_check(config: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hived.main", "--config", str(config), "--check-config"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
        cwd=REPO,
    )


# --- item 8: billion laughs -----------------------------------------------------------------------


def test_item_8_billion_laughs_expansion_is_bounded(tmp_path: Path) -> None:
    workflow = tmp_path / "laughs.yaml"
    workflow.write_text("kind: Workflow\nname: laughs\n" + LAUGHS)
    validated = hivectl("workflow", "validate", str(workflow), env=clean_env(), timeout=30)
    assert validated.returncode == 1, validated.stderr
    assert re.search(r"laughs\.yaml:\d+: .*HIVE_MAX_YAML_NODES", validated.stderr), validated.stderr
    assert "Traceback" not in validated.stderr

    config = tmp_path / "hived.yaml"
    config.write_text("kind: Daemon\n" + LAUGHS)
    checked = hived_check(config)
    assert checked.returncode == 1
    assert re.search(r"hived\.yaml:\d+: .*HIVE_MAX_YAML_NODES", checked.stderr), checked.stderr

    # The bound is a setting, like the others: raised, the same file gets past it (to what it lacks).
    small = tmp_path / "small.yaml"
    small.write_text("kind: Workflow\nname: s\n" + LAUGHS.split("x3:")[0])
    low = hivectl("workflow", "validate", str(small), env=clean_env(HIVE_MAX_YAML_NODES="100"))
    assert (
        low.returncode == 1
        and "small.yaml:4: more than 100 nodes once its aliases are expanded (HIVE_MAX_YAML_NODES)"
        in low.stderr
    )
    high = hivectl("workflow", "validate", str(small), env=clean_env(HIVE_MAX_YAML_NODES="10000"))
    assert high.returncode == 1 and "small.yaml:1: steps: required" in high.stderr
    bad = hivectl("workflow", "validate", str(small), env=clean_env(HIVE_MAX_YAML_NODES="0"))
    assert bad.returncode == 1 and "HIVE_MAX_YAML_NODES: '0' is not a positive whole number" in bad.stderr


# --- item 11: a bad TLS setup fails at start --------------------------------------------------------


def make_cert(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
        + ["-days", "1", "-subj", "/CN=localhost"],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def certs(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = make_cert(tmp_path, "one")
    _, other_key = make_cert(tmp_path, "two")
    yield cert, key, other_key


@pytest.mark.parametrize("problem", ["mismatched key", "missing certificate", "not a certificate"])
def test_item_11_a_bad_tls_setup_fails_at_start(
    certs: tuple[Path, Path, Path], tmp_path: Path, problem: str
) -> None:
    cert, key, other_key = certs
    if problem == "mismatched key":
        key, expected = other_key, "does not match"
    elif problem == "missing certificate":
        cert, expected = tmp_path / "gone.crt", "No such file or directory"
    else:
        cert.write_text("hello\n")
        expected = "not a PEM certificate"
    config = tmp_path / "hived.yaml"
    config.write_text(f"kind: Daemon\nlisten: 127.0.0.1:{free_port()}\ntls_cert: {cert}\ntls_key: {key}\n")
    checked = hived_check(config)
    assert checked.returncode == 1, checked.stdout
    assert expected in checked.stderr and ("tls_cert" in checked.stderr or "tls_key" in checked.stderr)
    assert "Traceback" not in checked.stderr

    state = tmp_path / "state"
    daemon = Hived(state, extra_args=["--config", str(config)])
    state.mkdir()
    with open(daemon.log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hived.main", "--config", str(config), "--state-dir", str(state)]
            + ["--socket", str(daemon.socket)],
            env=daemon.env,
            stdout=log,
            stderr=log,
            cwd=REPO,
        )
    try:
        assert proc.wait(30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        daemon.client.close()
    assert expected in daemon.log() and "serving on https" not in daemon.log()
    assert not daemon.socket.exists()


# --- item 13: the database is not world-readable ----------------------------------------------------


def test_item_13_database_files_are_private_in_a_0755_state_dir(hived_factory: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    old = os.umask(0o022)  # the umask of a login shell: files 0644 unless hived says otherwise
    try:
        daemon: Hived = hived_factory(state_dir=state)
    finally:
        os.umask(old)
    daemon.submit("secret-work", payload={"secret": "s3cr3t"})
    wal = state / "hive.db-wal"
    wait_for(wal.exists, what="the WAL")
    for name in ("hive.db", "hive.db-wal", "hive.db-shm", "hive.db.lock"):
        mode = stat.S_IMODE((state / name).stat().st_mode)
        assert mode == 0o600, f"{name} is {mode:o}"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert "state dir" in daemon.log() and "0755" in daemon.log()  # it says what it changed


def test_item_16_a_wal_cut_short_under_load_is_503_not_500(hived: Hived) -> None:
    for i in range(200):
        hived.submit("t", payload={"i": i})
    wal = hived.state_dir / "hive.db-wal"
    assert wal.exists() and wal.stat().st_size > 100
    os.truncate(wal, 100)  # what a crashed disk or a careless copy leaves
    codes = set()
    for i in range(40):
        codes.add(hived.client.post("/tasks", json={"type": "t", "payload": {"i": i}}).status_code)
        codes.add(hived.client.get("/tasks", params={"limit": 5}).status_code)
    assert codes <= {200, 201, 503}, codes  # never a 500: the damage is said, not a traceback
    assert hived.client.get("/healthz").status_code == 200
