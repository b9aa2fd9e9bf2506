"""What a large pending queue costs the garbage collector: objects tracked per queued task, and the
time of one full collection with the queue, against the same process before the tasks came.

    .venv/bin/python bench/gc_queue.py [--tasks 271000] [--collections 5]

In this process, on the real store (a SQLite file), dispatcher and task service, no agent: tasks
are submitted in batches of 200 (as bench/abuse.py does, each requiring a capability no agent has)
and stay queued. As in hived, what was loaded before is frozen (`gc.freeze()`). Prints the tracked
objects (`gc.get_objects()`) added per queued task (overall, and over the second half: the margin)
and the median of `--collections` full collections (`gc.collect()`), with the queue and before it.
A figure printer, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hived.bounds import Limits  # noqa: E402
from hived.events import EventBus  # noqa: E402
from hived.model.schemas import TaskSubmit  # noqa: E402
from hived.store.db import Database  # noqa: E402
from hived.tasks.dispatcher import Dispatcher  # noqa: E402
from hived.tasks.service import TaskService  # noqa: E402

BATCH = 200


def batch(start: int) -> list[TaskSubmit]:
    return [TaskSubmit(type="t", requires=["nobody"], payload={"n": start + i}) for i in range(BATCH)]


def full_collections(count: int) -> float:
    """The median time of `count` full collections, in milliseconds."""
    times = []
    for _ in range(count):
        began = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


async def main(tasks: int, collections: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'hive.db'}")
        await db.migrate()
        db.start()
        events = EventBus()
        dispatcher = Dispatcher(db, events=events)
        service = TaskService(db, dispatcher, Limits(), events)
        await service.submit_many(batch(0))  # warm: caches, prepared statements
        gc.collect()
        gc.freeze()  # as hived does at start (hived.main.tune_gc): what was loaded is not scanned again
        quiet = full_collections(collections)
        counts, began = [len(gc.get_objects())], time.perf_counter()
        for half in (tasks // 2, tasks - tasks // 2):
            for start in range(0, half, BATCH):
                await service.submit_many(batch(start))
            gc.collect()
            counts.append(len(gc.get_objects()))
        submitted = time.perf_counter() - began
        queued = dispatcher.queue_depth()
        full = full_collections(collections)
        await db.close()
    print(f"{queued:,} tasks queued in {submitted:.1f} s")
    print(
        f"tracked objects: {counts[0]:,} before, {counts[1]:,} at half, {counts[2]:,} at the end: "
        f"{(counts[2] - counts[0]) / queued:.3f} per queued task, "
        f"{(counts[2] - counts[1]) / (tasks - tasks // 2):.3f} per task over the second half "
        "(the event log keeps the last 10,000 events whatever the queue)"
    )
    print(
        f"full collection (median of {collections}): {full:.1f} ms with the queue, {quiet:.1f} ms before it"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=271_000)
    parser.add_argument("--collections", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.collections))
