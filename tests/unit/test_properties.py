"""Property-based tests (Hypothesis): the YAML document loader and the scheduler, on arbitrary input.
The loader raises nothing but DocumentError; the scheduler never breaks its rules."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hived.model.documents import DocumentError, load_documents
from hived.tasks.routing import AgentSlot, Assigner, ReadyQueue

# derandomize: the same examples on every run, so CI is deterministic; raise max_examples (and drop
# derandomize) locally to explore further.
FAST = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**6), st.text(string.printable, max_size=20)
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(string.ascii_letters + "_", max_size=12), inner, max_size=5),
    ),
    max_leaves=20,
)
KEYS = [
    "kind",
    "name",
    "steps",
    "params",
    "id",
    "type",
    "needs",
    "when",
    "payload",
    "handler",
    "replicas",
    "timeout",
    "retry",
    "env",
    "capabilities",
    "continue_on_failure",
    "max_concurrency",
]


def as_yaml(value: object, indent: int = 0) -> str:
    import json

    return json.dumps(value)  # JSON is YAML: documents of any shape


@FAST
@given(st.text(max_size=400))
def test_arbitrary_text_is_a_document_or_a_document_error(text: str) -> None:
    try:
        load_documents(text, "fuzz.yaml")
    except DocumentError as exc:
        assert str(exc).startswith("fuzz.yaml")


@FAST
@given(
    st.sampled_from(["Agent", "Workflow", "Daemon", "Robot", None]),
    st.dictionaries(st.sampled_from(KEYS), yaml_values, max_size=8),
)
def test_arbitrary_documents_of_known_kinds(kind: str | None, body: dict[str, object]) -> None:
    document = {**body, **({"kind": kind} if kind else {})}
    try:
        load_documents(as_yaml(document), "doc.yaml")
    except DocumentError as exc:
        assert str(exc).startswith("doc.yaml:")


@FAST
@given(
    st.lists(st.tuples(st.integers(0, 9), st.frozensets(st.sampled_from("abc"), max_size=2)), max_size=40),
    st.lists(
        st.tuples(st.frozensets(st.sampled_from("abc"), max_size=3), st.integers(1, 4)),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 5),
)
def test_the_scheduler_keeps_its_rules(
    tasks: list[tuple[int, frozenset[str]]], agents: list[tuple[frozenset[str], int]], share: int
) -> None:
    queue = ReadyQueue()
    requires = {}
    for seq, (priority, needs) in enumerate(tasks):
        queue.push(f"t{seq}", priority, seq, needs)
        requires[f"t{seq}"] = needs
    slots = [AgentSlot(f"a{i}", caps, limit) for i, (caps, limit) in enumerate(agents)]
    assigned = Assigner(fifo_share=share).assign(queue, slots)
    ids = [task_id for task_id, _ in assigned]
    assert len(ids) == len(set(ids))  # no task twice
    for task_id, agent in assigned:
        assert requires[task_id] <= agent.capabilities  # only to a capable agent
    for slot in slots:
        assert 0 <= slot.in_flight <= slot.max_concurrency  # never over capacity
    left = [t for t in requires if t not in ids]
    assert len(queue) == len(left)
    # whatever is left has no capable agent with a free slot
    for task_id in left:
        assert not any(requires[task_id] <= s.capabilities and s.free > 0 for s in slots)
