"""YAML documents: strict validation, and errors that name the file, the line and the field."""

from __future__ import annotations

import pytest

from hived.model.documents import (
    KINDS,
    DocumentError,
    check_unique_names,
    expand_replicas,
    load_documents,
)
from hived.model.schemas import AgentSpec

GOOD = """\
kind: Agent
name: reviewer
capabilities: [python, code_review]
handler:
  exec: ["python3", "review.py"]
heartbeat_interval: 2s
restart: {policy: always, window: 1m}
---
kind: Agent
name: echo
replicas: 2
handler: {python: "hivectl.agent.builtin:echo"}
---
"""


def test_good_documents_are_validated_models() -> None:
    docs = load_documents(GOOD, "a.yaml")
    assert [(d.kind, d.filename, d.line) for d in docs] == [("Agent", "a.yaml", 1), ("Agent", "a.yaml", 9)]
    reviewer = docs[0].spec
    assert isinstance(reviewer, AgentSpec)
    assert reviewer.heartbeat_interval == 2.0 and reviewer.restart.window == 60.0
    assert reviewer.capabilities == ["code_review", "python"]
    assert reviewer.handler is not None and reviewer.handler.exec == ["python3", "review.py"]
    assert docs[1].names == ["echo-1", "echo-2"]


def test_expand_replicas() -> None:
    single = AgentSpec(name="solo")
    assert expand_replicas(single) == [single]
    many = expand_replicas(AgentSpec(name="echo", replicas=3, capabilities=["x"]))
    assert [(s.name, s.replicas, s.type, s.capabilities) for s in many] == [
        ("echo-1", 1, "echo", ["x"]),
        ("echo-2", 1, "echo", ["x"]),
        ("echo-3", 1, "echo", ["x"]),
    ]
    typed = expand_replicas(AgentSpec(name="w", type="worker", replicas=2))
    assert {s.type for s in typed} == {"worker"}


AGENT = "kind: Agent\nname: a\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # unknown keys: the key's own line and its name
        (AGENT + "capabilites: [x]\n", "a.yaml:3: unknown key 'capabilites'"),
        (
            "kind: Agent\nname: a\nhandler:\n  python: m:f\nrestart:\n  policy: always\n  polcy: never\n",
            "a.yaml:7: restart: unknown key 'polcy'",
        ),
        (AGENT + "handler: {python: 'm:f', shell: x}\n", "a.yaml:3: handler: unknown key 'shell'"),
        (AGENT + "1: 2\n", "a.yaml:3: invalid key '1'"),
        # wrong types: the value's line
        (AGENT + "max_concurrency: lots\n", "a.yaml:3: max_concurrency: Input should be a valid integer"),
        (AGENT + "max_concurrency:\n  - 1\n", "a.yaml:3: max_concurrency: Input should be a valid integer"),
        (
            AGENT + "max_concurrency: 0\n",
            "a.yaml:3: max_concurrency: Input should be greater than or equal to 1",
        ),
        (AGENT + "env:\n  A: ok\n  B: [x]\n", "a.yaml:5: env.B: Input should be a valid string"),
        (AGENT + "handler:\n  exec: []\n", "a.yaml:4: handler.exec: List should have at least 1 item"),
        (AGENT + "handler: lots\n", "a.yaml:3: handler: Input should be a valid dictionary"),
        (AGENT + "restart:\n  policy: sometimes\n", "a.yaml:4: restart.policy: Input should be 'always'"),
        (
            AGENT + "capabilities:\n  - x\n  - [y]\n",
            "a.yaml:5: capabilities[1]: Input should be a valid string",
        ),
        # durations and sizes
        (AGENT + "heartbeat_interval: soon\n", "a.yaml:3: heartbeat_interval: 'soon' is not a duration"),
        (AGENT + "restart:\n  window: later\n", "a.yaml:4: restart.window: 'later' is not a duration"),
        (AGENT + "heartbeat_interval: 0\n", "a.yaml:3: heartbeat_interval: must be between 100ms and 1h"),
        (AGENT + "max_memory: lots\n", "a.yaml:3: max_memory: 'lots' is not a size"),
        # names
        ("kind: Agent\ncapabilities: []\n", "a.yaml:1: name: required"),
        ("kind: Agent\nname: Bad Name\n", "a.yaml:2: name: must be 1-63 lowercase"),
        ("kind: Agent\nname: 5\n", "a.yaml:2: name: Input should be a valid string"),
        (
            "kind: Agent\nname: " + "a" * 62 + "\nreplicas: 10\n",
            "a.yaml:3: replicas: replica name '" + "a" * 62 + "-10' would be longer than 63 characters",
        ),
        (AGENT + "---\nkind: Agent\nname: a\n", "a.yaml:5: name: Agent 'a' is also defined at a.yaml:1"),
        (
            "kind: Agent\nname: w-2\n---\nkind: Agent\nname: w\nreplicas: 2\n",
            "a.yaml:5: name: Agent 'w-2' is also defined at a.yaml:1",
        ),
        # handlers
        (
            AGENT + "handler:\n  exec: [x]\n  python: m:f\n",
            "a.yaml:3: handler: give exactly one of exec or python",
        ),
        (AGENT + "handler: {python: not-a-function}\n", "a.yaml:3: handler: python must look like"),
        # the first error in the file wins
        (AGENT + "max_concurrency: x\ncapabilites: []\n", "a.yaml:3: max_concurrency: Input should be"),
        # YAML itself
        ("kind: Agent\nname: [unclosed\n", "a.yaml:3: YAML syntax error: expected ',' or ']'"),
        ("kind: Agent\nname: a\nhandler:\n\texec: x\n", "a.yaml:4: YAML syntax error: found character '\\t'"),
        (AGENT + "x: !!python/object:os.system ls\n", "a.yaml:3: YAML syntax error: could not determine"),
        (AGENT + "name: b\n", "a.yaml:3: duplicate key 'name'"),
        (AGENT + "env:\n  A: x\n  A: y\n", "a.yaml:5: env: duplicate key 'A'"),
        # kinds and document shapes
        (
            "kind: Robot\n",
            "a.yaml:1: kind: unknown kind 'Robot' (known kinds: Agent, Limit, Schedule, Workflow)",
        ),
        ("name: a\nkind:\n  - Agent\n", "a.yaml:2: kind: unknown kind ['Agent']"),
        ("name: a\n", "a.yaml:1: kind: required (known kinds: Agent, Limit, Schedule, Workflow)"),
        ("- 1\n- 2\n", "a.yaml:1: a document must be a mapping with 'kind', not a list"),
        (AGENT + "---\njust text\n", "a.yaml:4: a document must be a mapping with 'kind', not a scalar"),
        (AGENT + "---\n# nothing\n---\n" + AGENT, "a.yaml:3: empty document"),
        ("", "a.yaml:1: no documents"),
        ("# only a comment\n---\n", "a.yaml:1: no documents"),
    ],
)
def test_errors_name_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(DocumentError) as info:
        load_documents(text, "a.yaml")
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_kind_lists_every_registered_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, "Workflow", lambda data: AgentSpec(name="x"))
    with pytest.raises(DocumentError, match=r"known kinds: Agent, Limit, Schedule, Workflow\)$"):
        load_documents("kind: Job\n", "w.yaml")


def test_names_must_be_unique_across_files() -> None:
    first = load_documents("kind: Agent\nname: a\n", "one.yaml")
    second = load_documents("# second file\nkind: Agent\nname: a\n", "two.yaml")
    with pytest.raises(DocumentError, match=r"^two.yaml:3: name: Agent 'a' is also defined at one.yaml:1$"):
        check_unique_names([*first, *second])


def test_alias_bombs_are_refused() -> None:
    text = (
        "kind: Agent\nname: a\nenv:\n"
        + "".join(f"  k{i}: &a{i} v\n" for i in range(101))
        + "capabilities: ["
        + ", ".join(f"*a{i}" for i in range(101))
        + "]\n"
    )
    with pytest.raises(DocumentError, match=r"^a.yaml:105: more than 100 YAML aliases"):
        load_documents(text, "a.yaml")


def test_huge_text_is_refused() -> None:
    with pytest.raises(DocumentError, match="larger than"):
        load_documents("kind: Agent\nname: a\n#" + "x" * 1_000_001, "a.yaml")


def test_control_characters_are_a_document_error() -> None:
    """Found by Hypothesis: the YAML reader's own error escaped as a yaml.ReaderError."""
    with pytest.raises(DocumentError, match=r"^x.yaml:2: not YAML text: character #x001f"):
        load_documents("kind: Agent\nname: \x1f\n", "x.yaml")
