"""Agent log files: per-incarnation names, copy-truncate rotation, retention."""

from pathlib import Path

from hivectl.agent import logcap
from hived.agents.logs import incarnation_log, prune, rotate_if_large


def test_rotation_keeps_one_copy_and_restarts_the_file(tmp_path: Path) -> None:
    log = incarnation_log(tmp_path, "worker", 3)
    log.parent.mkdir(parents=True)
    log.write_bytes(b"x" * 100)
    assert not rotate_if_large(log, max_bytes=200)
    with open(log, "ab", buffering=0) as fh:  # the agent appends through its own descriptor
        fh.write(b"y" * 150)
        assert rotate_if_large(log, max_bytes=200)
        fh.write(b"after")
    assert log.with_name("agent-3.log.1").read_bytes() == b"x" * 50 + b"y" * 150  # the last 200 bytes
    assert log.read_bytes() == b"after"  # O_APPEND: no hole left by the truncation


def test_prune_keeps_the_newest_incarnations(tmp_path: Path) -> None:
    for n in range(1, 8):
        incarnation_log(tmp_path, "w", n).parent.mkdir(parents=True, exist_ok=True)
        incarnation_log(tmp_path, "w", n).write_text(str(n))
    incarnation_log(tmp_path, "w", 2).with_name("agent-2.log.1").write_text("old")
    removed = prune(tmp_path, "w", keep=3)
    assert len(removed) == 5
    left = sorted(p.name for p in incarnation_log(tmp_path, "w", 1).parent.iterdir())
    assert left == ["agent-5.log", "agent-6.log", "agent-7.log"]


def test_item7_rotation_keeps_at_most_max_bytes_in_the_copy(tmp_path: Path) -> None:
    """A log far over its bound (a handler printed 1.5 GiB) leaves only its last max_bytes in `.1`."""
    log = incarnation_log(tmp_path, "loud", 1)
    log.parent.mkdir(parents=True)
    log.write_bytes(b"a" * 3_000_000 + b"z" * 1000)
    assert rotate_if_large(log, max_bytes=100_000)
    kept = log.with_name("agent-1.log.1").read_bytes()
    assert len(kept) == 100_000 and kept.endswith(b"z" * 1000)
    assert log.stat().st_size == 0
    assert not log.with_name("agent-1.log.1.tmp").exists()


def test_item7_the_agent_caps_its_own_output_over_twice_the_bound(tmp_path: Path) -> None:
    """What a python handler prints goes through sys.stdout: past twice the bound it is dropped (and
    counted) until hived has rotated the file."""
    path = tmp_path / "agent-1.log"
    with open(path, "a", buffering=1) as fh:
        size = logcap._Size(fh.fileno(), logcap.HEADROOM * 10_000)
        stream = logcap.CappedStream(fh, size)  # type: ignore[arg-type]
        for _ in range(100):
            stream.write("x" * 999 + "\n")
        fh.flush()
        assert 19_000 <= path.stat().st_size <= 20_000
        fh.truncate(0)  # hived rotated it
        size.checked = 0.0
        stream.write("after\n")
    text = path.read_text()
    assert text.startswith("[hive-agent: 80000 characters of output dropped") and text.endswith("after\n")
