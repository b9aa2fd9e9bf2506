"""Agent log files: per-incarnation names, copy-truncate rotation, retention."""

from pathlib import Path

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
    assert log.with_name("agent-3.log.1").read_bytes() == b"x" * 100 + b"y" * 150
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
