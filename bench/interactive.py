"""What an interactive agent (`tty: true`) costs against a plain exec handler, on a real hived:

- per task: N tasks of a handler that prints a JSON object and exits, run one after another by one
  agent, as `exec` and as `tty: true` (a tmux session and the relay per attempt);
- the answer's round trip: for a handler that asks N questions in a row, from `hivectl task send`'s
  API call (`POST /tasks/{id}/input`) to the task back in `running` (the line typed in the session,
  echoed, and reported by the agent), p50 and max.

    .venv/bin/python bench/interactive.py --tasks 30 --questions 20
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import percentile  # noqa: E402
from tests.helpers import Hived, wait_for  # noqa: E402

QUICK = 'import json; print(json.dumps({"ok": True}))'
ASK = """
import json, sys
n = int(sys.argv[1])
print(json.dumps({"answers": [input(f"Question {i}? [y/n] ") for i in range(n)]}))
"""


def per_task(hived: Hived, name: str, handler: dict, tasks: int) -> float:
    hived.spawn(name, handler, capabilities=[name])
    started = time.monotonic()
    for _ in range(tasks):
        task = hived.submit("q", requires=[name], max_attempts=1)
        assert hived.wait_task(task["id"], timeout=60)["status"] == "completed"
    return (time.monotonic() - started) / tasks


def round_trips(hived: Hived, script: Path, questions: int) -> list[float]:
    handler = {"exec": [sys.executable, str(script), str(questions)], "tty": True}
    hived.spawn(
        "asker", {**handler, "prompt_pattern": r"\[y/n\] $", "input_timeout": "0.1s"}, capabilities=["ask"]
    )
    task = hived.submit("ask", requires=["ask"])
    times = []
    for _ in range(questions):
        wait_for(lambda: hived.task(task["id"])["status"] == "waiting_input", timeout=30, interval=0.005)
        sent = time.monotonic()
        hived.api("POST", f"/tasks/{task['id']}/input", json={"text": "y"})
        wait_for(lambda: hived.task(task["id"])["status"] != "waiting_input", timeout=30, interval=0.002)
        times.append(time.monotonic() - sent)
    assert hived.wait_task(task["id"])["status"] == "completed"
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--questions", type=int, default=20)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    script = state / "ask.py"
    script.write_text(ASK)
    hived = Hived(state).start()
    try:
        plain = per_task(hived, "plain", {"exec": [sys.executable, "-c", QUICK]}, args.tasks)
        tty = per_task(hived, "tty", {"exec": [sys.executable, "-c", QUICK], "tty": True}, args.tasks)
        print(f"per task, one after another: exec {plain * 1000:.0f} ms, tty {tty * 1000:.0f} ms")
        times = sorted(round_trips(hived, script, args.questions))
        p50, worst = percentile(times, 50) * 1000, times[-1] * 1000
        print(f"answer round trip ({args.questions} answers): p50 {p50:.0f} ms, max {worst:.0f} ms")
    finally:
        hived.cleanup()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
