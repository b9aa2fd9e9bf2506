import pytest

from hived.core.documents import DocumentError, expand_replicas, load_documents

GOOD = """\
kind: Agent
name: reviewer
capabilities: [python, code_review]
handler:
  exec: ["python3", "review.py"]
heartbeat_interval: 2s
---
kind: Agent
name: echo
replicas: 2
handler: {python: "hivectl.agent.builtin:echo"}
"""


def test_good_documents() -> None:
    docs = load_documents(GOOD, "a.yaml")
    assert [d.kind for d in docs] == ["Agent", "Agent"]
    assert docs[0].spec.heartbeat_interval == 2.0 and docs[1].line == 8
    assert [s.name for s in expand_replicas(docs[1].spec)] == ["echo-1", "echo-2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Agent\nname: a\ncapabilites: [x]\n", "a.yaml:3: unknown key 'capabilites'"),
        (
            "kind: Agent\nname: a\nmax_concurrency: lots\n",
            "a.yaml:3: max_concurrency: Input should be a valid integer",
        ),
        (
            "kind: Agent\nname: a\nheartbeat_interval: soon\n",
            "a.yaml:3: heartbeat_interval: 'soon' is not a duration",
        ),
        ("kind: Agent\ncapabilities: []\n", "a.yaml:1: name: required"),
        ("kind: Agent\nname: Bad Name\n", "a.yaml:2: name: must be 1-63 lowercase"),
        (
            "kind: Agent\nname: a\nhandler:\n  exec: [x]\n  python: m:f\n",
            "a.yaml:4: handler: give exactly one",
        ),
        ("kind: Agent\nname: a\nrestart:\n  polcy: always\n", "a.yaml:4: unknown key 'polcy' in restart"),
        ("kind: Agent\nname: [unclosed\n", "a.yaml:3: YAML syntax error"),
        ("kind: Robot\nname: a\n", "a.yaml:1: kind: 'Robot' (known kinds: Agent)"),
        ("name: a\n", "a.yaml:1: kind: missing"),
        ("- 1\n- 2\n", "a.yaml:1: a document must be a mapping"),
        ("", "a.yaml: no documents"),
    ],
)
def test_errors_name_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(DocumentError) as info:
        load_documents(text, "a.yaml")
    assert str(info.value).startswith(message), str(info.value)


def test_alias_bombs_are_refused() -> None:
    text = (
        "kind: Agent\nname: a\nenv:\n"
        + "".join(f"  k{i}: &a{i} v\n" for i in range(101))
        + "capabilities: ["
        + ", ".join(f"*a{i}" for i in range(101))
        + "]\n"
    )
    with pytest.raises(DocumentError, match="aliases"):
        load_documents(text, "a.yaml")
