"""How long an operator waits for hivectl: the wall time of `hivectl --version` and of
`hivectl task submit --wait` of a no-op task on an idle daemon with one python agent.

    .venv/bin/python bench/cli.py --runs 15
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


def wall(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def show(name: str, times: list[float]) -> None:
    print(f"{name:<40} median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms")


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
        show("hivectl --version", wall([HIVECTL, "--version"], env, args.runs))
        submit = [HIVECTL, "task", "submit", "noop", "--requires", "py", "--wait", "-o", "json"]
        show("hivectl task submit --wait (no-op)", wall(submit, env, args.runs))
    finally:
        daemon.close()


if __name__ == "__main__":
    main()
