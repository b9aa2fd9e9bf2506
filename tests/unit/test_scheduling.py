"""Routing and ordering rules, without a server."""

from __future__ import annotations

import pytest

from hived.tasks.routing import AgentSlot, Assigner, ReadyQueue, pick_agent


def slot(agent_id: str, caps: set[str], max_c: int = 1, in_flight: int = 0, last: int = 0) -> AgentSlot:
    return AgentSlot(agent_id, frozenset(caps), max_c, in_flight, last)


@pytest.mark.parametrize(
    ("requires", "agents", "expected"),
    [
        ({"python"}, [slot("a", {"go"}), slot("b", {"python", "git"})], "b"),
        ({"python", "git"}, [slot("a", {"python"}), slot("b", {"python", "git"})], "b"),
        ({"rust"}, [slot("a", {"python"}), slot("b", {"go"})], None),
        (set(), [slot("a", set())], "a"),
        # least loaded wins: 1/4 beats 1/2
        ({"x"}, [slot("a", {"x"}, 2, 1), slot("b", {"x"}, 4, 1)], "b"),
        # full agents are skipped
        ({"x"}, [slot("a", {"x"}, 1, 1), slot("b", {"x"}, 2, 1)], "b"),
        ({"x"}, [slot("a", {"x"}, 1, 1)], None),
        # equal load: the one assigned longest ago
        ({"x"}, [slot("a", {"x"}, last=5), slot("b", {"x"}, last=2)], "b"),
    ],
)
def test_pick_agent(requires: set[str], agents: list[AgentSlot], expected: str | None) -> None:
    chosen = pick_agent(frozenset(requires), agents)
    assert (chosen.agent_id if chosen else None) == expected


def fill(queue: ReadyQueue, items: list[tuple[str, int, set[str]]]) -> None:
    for seq, (task_id, priority, requires) in enumerate(items, start=1):
        queue.push(task_id, priority, seq, frozenset(requires))


def test_priority_then_fifo() -> None:
    queue = ReadyQueue()
    fill(
        queue,
        [("low1", 1, set()), ("high1", 9, set()), ("mid", 5, set()), ("high2", 9, set()), ("low2", 1, set())],
    )
    agent = slot("a", set(), max_c=100)
    order = [task_id for task_id, _ in Assigner(fifo_share=0).assign(queue, [agent])]
    assert order == ["high1", "high2", "mid", "low1", "low2"]


def test_tasks_wait_for_a_capable_agent_without_blocking_others() -> None:
    queue = ReadyQueue()
    fill(queue, [("gpu-job", 9, {"gpu"}), ("cpu-job", 1, set())])
    agent = slot("cpu", set())
    pairs = Assigner(fifo_share=0).assign(queue, [agent])
    assert [t for t, _ in pairs] == ["cpu-job"]
    assert "gpu-job" in queue and len(queue) == 1


def test_equal_agents_share_the_load() -> None:
    queue = ReadyQueue()
    fill(queue, [(f"t{i}", 5, set()) for i in range(6)])
    agents = [slot("a", set(), 3), slot("b", set(), 3)]
    pairs = Assigner(fifo_share=0).assign(queue, agents)
    assert sorted(a.agent_id for _, a in pairs) == ["a", "a", "a", "b", "b", "b"]
    assert [a.agent_id for _, a in pairs[:2]] in (["a", "b"], ["b", "a"])


def test_discarded_tasks_are_never_assigned() -> None:
    queue = ReadyQueue()
    fill(queue, [("keep", 5, set()), ("drop", 9, set())])
    assert queue.discard("drop")
    pairs = Assigner().assign(queue, [slot("a", set(), 5)])
    assert [t for t, _ in pairs] == ["keep"]


def test_fifo_share_prevents_starvation() -> None:
    """Under a constant stream of priority-9 work, a priority-0 task still runs within fifo_share picks."""
    queue = ReadyQueue()
    assigner = Assigner(fifo_share=10)
    queue.push("starving", 0, 0, frozenset())
    seq = 1
    picked_at = None
    for step in range(100):
        for _ in range(2):  # high-priority work arrives faster than it is served
            queue.push(f"hot{seq}", 9, seq, frozenset())
            seq += 1
        [(task_id, _)] = assigner.assign(queue, [slot("a", set())])
        if task_id == "starving":
            picked_at = step
            break
    assert picked_at is not None and picked_at < 10


def test_without_fifo_share_low_priority_starves() -> None:
    queue = ReadyQueue()
    assigner = Assigner(fifo_share=0)
    queue.push("starving", 0, 0, frozenset())
    for seq in range(1, 50):
        queue.push(f"hot{seq}", 9, seq, frozenset())
        [(task_id, _)] = assigner.assign(queue, [slot("a", set())])
        assert task_id != "starving"


def test_a_large_queue_costs_the_collector_nothing_per_task() -> None:
    """A queued task holds one tracked object (its ReadyTask): the heap entries are tuples of atoms
    (untracked once the collector has seen them) and tasks with the same `requires` share one set."""
    import gc

    from hived.tasks.attempts import ReadyTask

    rows = [
        dict(id=f"t{i}", type="x", payload={"n": i}, priority=0, seq=i, requires=["gpu", "py"],
             options={}, attempts=0, max_attempts=3)
        for i in range(100)
    ]
    tasks = [ReadyTask.from_row(row) for row in rows]
    assert len({id(task.requires) for task in tasks}) == 1
    assert not hasattr(tasks[0], "__dict__")  # slots: no dict per task
    queue = ReadyQueue()
    for task in tasks:
        queue.push(task.id, task.priority, task.seq, task.requires)
    gc.collect()
    heaps = [*queue._by_priority.values(), *queue._by_age.values()]
    entries = [entry for heap in heaps for entry in heap]
    assert len(entries) == 200
    assert not any(gc.is_tracked(entry) for entry in entries)
