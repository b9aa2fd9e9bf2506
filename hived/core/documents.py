"""YAML documents (`kind: Agent`, ...) loaded safely and validated strictly, with errors that name
the file, the line and the field: `agents.yaml:7: unknown key 'capabilites'`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hived.api.schemas import AgentSpec

MAX_YAML_BYTES = 1_000_000
MAX_ALIASES = 100


class DocumentError(ValueError):
    """One line: FILE:LINE: message."""


@dataclass
class Document:
    kind: str
    spec: BaseModel
    line: int
    node: yaml.Node


# kind -> validator of the document body (without `kind`); more kinds register here.
KINDS: dict[str, Callable[[dict[str, Any]], BaseModel]] = {"Agent": AgentSpec.model_validate}


def _line_of(node: yaml.Node, path: tuple[Any, ...]) -> tuple[int, bool]:
    """The 1-based line of `path` inside `node`; False when the path ends at a missing key."""
    current = node
    for part in path:
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if key.value == str(part):
                    current = value
                    break
            else:
                return current.start_mark.line + 1, False
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            current = current.value[part]
        else:
            break
    return current.start_mark.line + 1, True


def _key_line(node: yaml.Node, path: tuple[Any, ...]) -> int:
    parent_line, _ = _line_of(node, path[:-1])
    parent = node
    for part in path[:-1]:
        if isinstance(parent, yaml.MappingNode):
            parent = next((v for k, v in parent.value if k.value == str(part)), parent)
        elif isinstance(parent, yaml.SequenceNode) and isinstance(part, int) and part < len(parent.value):
            parent = parent.value[part]
    if isinstance(parent, yaml.MappingNode):
        for key, _value in parent.value:
            if key.value == str(path[-1]):
                return key.start_mark.line + 1
    return parent_line


def validation_error(
    filename: str, node: yaml.Node, exc: ValidationError, prefix: tuple[Any, ...] = ()
) -> DocumentError:
    err = exc.errors()[0]
    loc = tuple(p for p in (*prefix, *err["loc"]) if p != "__root__")
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return DocumentError(
            f"{filename}:{_key_line(node, loc)}: unknown key {loc[-1]!r}"
            + (f" in {'.'.join(map(str, loc[:-1]))}" if len(loc) > 1 else "")
        )
    line, found = _line_of(node, loc)
    field = ".".join(str(p) for p in loc) or "document"
    if not found and err["type"] == "missing":
        return DocumentError(f"{filename}:{line}: {field}: required")
    return DocumentError(f"{filename}:{line}: {field}: {msg}")


class _CountingLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents with too many aliases (no billion laughs)."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases")
        return super().compose_node(parent, index)


def compose(text: str, filename: str) -> list[yaml.Node]:
    if len(text.encode()) > MAX_YAML_BYTES:
        raise DocumentError(f"{filename}: larger than {MAX_YAML_BYTES} bytes")
    loader = _CountingLoader(text)
    try:
        nodes = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                nodes.append(node)
        return nodes
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise DocumentError(f"{filename}:{line}: YAML syntax error: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{filename}: YAML error: {exc}") from None
    finally:
        loader.dispose()


def construct(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_document(node)


def load_documents(text: str, filename: str) -> list[Document]:
    """Every document of a multi-document YAML text, validated by its `kind`."""
    documents = []
    for node in compose(text, filename):
        line = node.start_mark.line + 1
        data = construct(node)
        if not isinstance(data, dict):
            raise DocumentError(f"{filename}:{line}: a document must be a mapping with a 'kind'")
        kind = data.pop("kind", None)
        if kind not in KINDS:
            known = ", ".join(sorted(KINDS))
            where = _key_line(node, ("kind",)) if kind is not None else line
            raise DocumentError(
                f"{filename}:{where}: kind: {'missing' if kind is None else repr(kind)}"
                f" (known kinds: {known})"
            )
        try:
            spec = KINDS[kind](data)
        except ValidationError as exc:
            raise validation_error(filename, node, exc) from None
        documents.append(Document(kind, spec, line, node))
    if not documents:
        raise DocumentError(f"{filename}: no documents")
    return documents


def expand_replicas(spec: AgentSpec) -> list[AgentSpec]:
    """`replicas: N` is N agents NAME-1..NAME-N, each a single replica."""
    if spec.replicas <= 1:
        return [spec]
    return [
        spec.model_copy(update={"name": f"{spec.name}-{i}", "replicas": 1, "type": spec.type or spec.name})
        for i in range(1, spec.replicas + 1)
    ]
