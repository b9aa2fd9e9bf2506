"""How long an operator waits for hivectl: the wall time (process start to exit) of `hivectl --version`,
of `hivectl status` (its table, piped; and on a terminal, where rich draws it) and of
`hivectl task submit --wait` of a no-op task, on an idle daemon with one python agent; medians over
--runs. `python -c pass` is the floor: the interpreter alone.

    .venv/bin/python bench/cli.py --runs 15

The targets of the "fast paths" issue are printed beside each figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Daemon  # noqa: E402
from hived.model.schemas import AgentSpec  # noqa: E402

HIVECTL = str(Path(sys.executable).parent / "hivectl")


def wall(argv: list[str], env: dict[str, str], runs: int, tty: bool = False) -> list[float]:
    """Wall times of `argv`, its stdout to /dev/null, or to a pseudo-terminal when `tty`."""
    times = []
    for _ in range(runs):
        master, slave = os.openpty() if tty else (-1, subprocess.DEVNULL)
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=slave)
        times.append(time.perf_counter() - started)
        if tty:  # the output is a few lines: it fits the terminal's buffer, read or not
            os.close(slave)
            os.close(master)
    return times


def show(name: str, times: list[float], target_ms: float | None = None) -> None:
    median = statistics.median(times) * 1000
    line = f"{name:<40} median {median:.0f} ms, min {min(times) * 1000:.0f} ms"
    if target_ms is not None:
        line += f"  (target <= {target_ms:.0f} ms: {'met' if median <= target_ms else 'MISSED'})"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    daemon = Daemon()
    try:
        spec = AgentSpec(name="echo", capabilities=["py"], handler={"python": "hivectl.agent.builtin:echo"})
        daemon.client.spawn_agent(spec)
        while daemon.client.get_agent("echo").status not in ("active", "busy"):
            time.sleep(0.05)
        env = dict(os.environ, HIVE_SOCKET=str(daemon.socket))
        show("python -c pass (the interpreter alone)", wall([sys.executable, "-c", "pass"], env, args.runs))
        show("hivectl --version", wall([HIVECTL, "--version"], env, args.runs), 100)
        show("hivectl status", wall([HIVECTL, "status"], env, args.runs), 150)
        show("hivectl status (on a terminal: rich)", wall([HIVECTL, "status"], env, args.runs, tty=True))
        submit = [HIVECTL, "task", "submit", "noop", "--requires", "py", "--wait", "-o", "json"]
        show("hivectl task submit --wait (no-op)", wall(submit, env, args.runs), 250)
    finally:
        daemon.close()


if __name__ == "__main__":
    main()
