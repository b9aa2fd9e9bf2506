"""YAML documents (`kind: Agent`, ...) loaded safely and validated strictly, with errors that name the
file, the line and the field: `agents.yaml:7: unknown key 'capabilites'`.

Pure: the caller reads the file and passes its text. Only `yaml.SafeLoader` is used; documents are
composed to nodes first so that every pydantic error `loc` can be mapped back to a line.

A new kind registers a validator in `KINDS`: a function from the document's mapping (without `kind`)
to a model. It may raise `pydantic.ValidationError`, or `FieldError` for rules pydantic cannot express
(a cycle in workflow steps, a name too long once expanded); both are reported at the offending line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hived.model.errors import clean_message
from hived.model.limits import LimitSpec
from hived.model.schedules import ScheduleSpec
from hived.model.schemas import NAME_RE, AgentSpec
from hived.model.workflow import WorkflowSpec, graph_errors

Loc = tuple[str | int, ...]


class DocumentError(ValueError):
    """A document that cannot be used; the message is one line, `FILE:LINE: field.path: message`."""


class FieldError(ValueError):
    """Raised by a kind's validator: `loc` is the path of the offending field inside the document."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


@dataclass(frozen=True)
class Document:
    """One validated document: its kind, the model its validator built, and where it came from."""

    kind: str
    spec: BaseModel
    filename: str
    line: int
    node: yaml.Node = field(repr=False, compare=False)

    @property
    def names(self) -> list[str]:
        """The names this document defines (an Agent with replicas defines several)."""
        if isinstance(self.spec, AgentSpec):
            return [spec.name for spec in expand_replicas(self.spec)]
        name = getattr(self.spec, "name", None)
        return [name] if isinstance(name, str) else []


def expand_replicas(spec: AgentSpec) -> list[AgentSpec]:
    """`replicas: N` (N > 1) is N agents NAME-1..NAME-N, each a single replica sharing one type."""
    if spec.replicas <= 1:
        return [spec]
    return [
        spec.model_copy(update={"name": f"{spec.name}-{i}", "replicas": 1, "type": spec.type or spec.name})
        for i in range(1, spec.replicas + 1)
    ]


def _validate_agent(data: dict[str, Any]) -> AgentSpec:
    spec = AgentSpec.model_validate(data)
    if spec.replicas > 1 and not NAME_RE.match(longest := f"{spec.name}-{spec.replicas}"):
        raise FieldError(("replicas",), f"replica name {longest!r} would be longer than 63 characters")
    return spec


def _validate_workflow(data: dict[str, Any]) -> WorkflowSpec:
    spec = WorkflowSpec.model_validate(data)
    if errors := graph_errors(spec):
        raise FieldError(errors[0].path, errors[0].message)
    return spec


# The extension point: kind -> validator of the document body (without `kind`).
KINDS: dict[str, Callable[[dict[str, Any]], BaseModel]] = {
    "Agent": _validate_agent,
    "Workflow": _validate_workflow,
    "Limit": LimitSpec.model_validate,
    "Schedule": ScheduleSpec.model_validate,
}


def load_documents(text: str, filename: str, limits: YamlLimits | None = None) -> list[Document]:
    """Every document of a multi-document YAML text, validated by its `kind`, within `limits` (the
    defaults if None; readers of operators' files pass `YamlLimits.from_env(os.environ)`).

    Raises `DocumentError` at the first problem; a file with no document at all is an error too.
    """
    documents = []
    for start, node in _compose(text, filename, limits or YamlLimits()):
        documents.append(_load_document(node, filename, start))
    if not documents:
        raise DocumentError(f"{filename}:1: no documents (expected a mapping with 'kind')")
    check_unique_names(documents)
    return documents


def check_unique_names(documents: Iterable[Document]) -> None:
    """Two documents of one kind must not define the same name (also across files)."""
    seen: dict[tuple[str, str], Document] = {}
    for doc in documents:
        for name in doc.names:
            first = seen.setdefault((doc.kind, name), doc)
            if first is not doc:
                line = _value_line(doc.node, ("name",))
                raise DocumentError(
                    f"{doc.filename}:{line}: name: {doc.kind} {name!r} is also defined at "
                    f"{first.filename}:{first.line}"
                )


def _load_document(node: yaml.Node, filename: str, start: int) -> Document:
    line = node.start_mark.line + 1
    if _is_empty(node):
        raise DocumentError(f"{filename}:{start}: empty document (expected a mapping with 'kind')")
    if not isinstance(node, yaml.MappingNode):
        raise DocumentError(
            f"{filename}:{line}: a document must be a mapping with 'kind', not a {_what(node)}"
        )
    _check_duplicate_keys(node, filename, ())
    data = _construct(node, filename)
    known = ", ".join(sorted(KINDS))
    if "kind" not in data:
        raise DocumentError(f"{filename}:{line}: kind: required (known kinds: {known})")
    kind = data.pop("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise DocumentError(
            f"{filename}:{_value_line(node, ('kind',))}: kind: unknown kind {kind!r} (known kinds: {known})"
        )
    try:
        spec = KINDS[kind](data)
    except ValidationError as exc:
        raise _validation_error(filename, node, exc) from None
    except FieldError as exc:
        raise field_error(filename, node, exc.loc, exc.message) from None
    return Document(kind=kind, spec=spec, filename=filename, line=line, node=node)


# --- YAML -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class YamlLimits:
    """The bounds of a YAML file: its size, its aliases, and the nodes it has once every alias is
    expanded (9 anchors of 10 aliases each are only 90 aliases, but 10^10 nodes). The caller, which
    reads the file, builds them: `YamlLimits.from_env(os.environ)` (hivectl, hived --config)."""

    max_bytes: int = 1_000_000
    max_aliases: int = 100
    max_nodes: int = 1_000_000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> YamlLimits:
        """HIVE_MAX_YAML_BYTES, HIVE_MAX_YAML_ALIASES, HIVE_MAX_YAML_NODES; DocumentError if not a
        positive whole number."""
        return cls(
            max_bytes=_env_limit(env, "HIVE_MAX_YAML_BYTES", cls.max_bytes),
            max_aliases=_env_limit(env, "HIVE_MAX_YAML_ALIASES", cls.max_aliases),
            max_nodes=_env_limit(env, "HIVE_MAX_YAML_NODES", cls.max_nodes),
        )


def _env_limit(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise DocumentError(f"{name}: {value!r} is not a positive whole number")
    return int(value)


class _SafeComposer(yaml.SafeLoader):
    """The safe loader, refusing files with many aliases or whose aliases expand to many nodes (no
    "billion laughs"): each node's size once expanded is known when it is composed, so an alias adds
    the size of its anchor's node, counted without walking it."""

    def __init__(self, stream: str, limits: YamlLimits) -> None:
        super().__init__(stream)
        self.limits = limits
        self.alias_count = 0
        self.expanded = 0  # the nodes of the file so far, every alias expanded
        self.sizes: dict[int, int] = {}  # id(node) -> its size expanded; nodes live as long as this

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > self.limits.max_aliases:
                raise DocumentError(
                    f"{self.name}:{mark.line + 1}: more than {self.limits.max_aliases} YAML aliases "
                    "(HIVE_MAX_YAML_ALIASES)"
                )
            node = super().compose_node(parent, index)
            self._count(self.sizes.get(id(node), 1), mark)  # an anchor inside itself: 1 (a cycle)
            return node
        node = super().compose_node(parent, index)
        children = node.value if isinstance(node, yaml.SequenceNode) else ()
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        self.sizes[id(node)] = 1 + sum(self.sizes.get(id(child), 1) for child in children)
        self._count(1, mark)
        return node

    def _count(self, nodes: int, mark: yaml.Mark) -> None:
        self.expanded += nodes
        if self.expanded > self.limits.max_nodes:
            raise DocumentError(
                f"{self.name}:{mark.line + 1}: more than {self.limits.max_nodes} nodes once its aliases "
                "are expanded (HIVE_MAX_YAML_NODES)"
            )


def _compose(text: str, filename: str, limits: YamlLimits) -> list[tuple[int, yaml.Node]]:
    """Each document's node, with the line where the document starts (its `---`, if any)."""
    if len(text.encode(errors="replace")) > limits.max_bytes:
        raise DocumentError(f"{filename}:1: larger than {limits.max_bytes} bytes (HIVE_MAX_YAML_BYTES)")
    try:
        loader = _SafeComposer(text, limits)  # its reader refuses control characters at once
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise DocumentError(
            f"{filename}:{line}: not YAML text: character #x{exc.character:04x} is not allowed"
        ) from None
    loader.name = filename
    nodes: list[tuple[int, yaml.Node]] = []
    try:
        while loader.check_node():
            start = loader.peek_event().start_mark.line + 1
            nodes.append((start, loader.get_node()))
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(filename, exc) from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{filename}:1: YAML syntax error: {exc}") from None
    finally:
        loader.dispose()
    # A trailing `---` leaves an empty last document: harmless, as in kubectl.
    if nodes and _is_empty(nodes[-1][1]):
        nodes.pop()
    return nodes


def _construct(node: yaml.Node, filename: str) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(filename, exc) from None
    finally:
        loader.dispose()


def _yaml_error(filename: str, exc: yaml.MarkedYAMLError) -> DocumentError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    problem = exc.problem or exc.context or "invalid YAML"
    return DocumentError(f"{filename}:{line}: YAML syntax error: {problem}")


def _is_empty(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null" and node.value == ""


def _what(node: yaml.Node) -> str:
    return "list" if isinstance(node, yaml.SequenceNode) else "scalar value"


def _check_duplicate_keys(node: yaml.Node, filename: str, loc: Loc) -> None:
    """PyYAML keeps the last of two equal keys silently; an operator's typo deserves an error."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in seen:
                    raise DocumentError(
                        f"{filename}:{key.start_mark.line + 1}: {_prefix(loc)}duplicate key {key.value!r}"
                    )
                seen.add(key.value)
            _check_duplicate_keys(
                value, filename, (*loc, key.value if isinstance(key, yaml.ScalarNode) else "?")
            )
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicate_keys(item, filename, (*loc, index))


# --- mapping pydantic errors to lines -------------------------------------------------------------


@dataclass
class _Found:
    node: yaml.Node  # the deepest node reached
    key: yaml.Node | None  # the key node that led to it (None for the root and list items)
    loc: Loc  # the parts of the path that were found


def _walk(root: yaml.Node, loc: Loc) -> _Found:
    """Follow `loc` as far as the YAML goes; parts that are not there (union tags, `[key]`) stop it."""
    found = _Found(root, None, ())
    for part in loc:
        current = found.node
        if isinstance(current, yaml.MappingNode):
            match = next(
                ((k, v) for k, v in current.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)),
                None,
            )
            if match is None:
                break
            found = _Found(match[1], match[0], (*found.loc, part))
        elif (
            isinstance(current, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(current.value)
        ):
            found = _Found(current.value[part], None, (*found.loc, part))
        else:
            break
    return found


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _value_line(root: yaml.Node, loc: Loc) -> int:
    """The line to blame for the value at `loc`: a scalar's own line, a mapping's or list's key line."""
    found = _walk(root, loc)
    if isinstance(found.node, yaml.ScalarNode) or found.key is None:
        return _line(found.node)
    return _line(found.key)


def _path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _prefix(loc: Loc) -> str:
    return f"{_path(loc)}: " if loc else ""


def field_error(filename: str, root: yaml.Node, loc: Loc, message: str) -> DocumentError:
    """`FILE:LINE: field.path: message` for the field at `loc` (as far as the document has it)."""
    found = _walk(root, loc)
    return DocumentError(f"{filename}:{_value_line(root, found.loc)}: {_prefix(found.loc)}{message}")


def _validation_error(filename: str, root: yaml.Node, exc: ValidationError) -> DocumentError:
    """The error that comes first in the file, on one line."""
    errors = [_one_error(filename, root, err) for err in exc.errors()]
    return min(errors, key=lambda item: item[0])[1]


def _one_error(filename: str, root: yaml.Node, err: Any) -> tuple[int, DocumentError]:
    loc: Loc = tuple(err["loc"])
    message = clean_message(err["msg"])
    if err["type"] in ("extra_forbidden", "invalid_key") and loc:
        parent = _walk(root, loc[:-1])
        key = next(
            (k for k, _ in getattr(parent.node, "value", []) if getattr(k, "value", None) == str(loc[-1])),
            None,
        )
        line = _line(key) if isinstance(key, yaml.Node) else _value_line(root, parent.loc)
        what = "unknown key" if err["type"] == "extra_forbidden" else "invalid key"
        text = f"{filename}:{line}: {_prefix(parent.loc)}{what} {str(loc[-1])!r}"
        return line, DocumentError(text)
    if err["type"] == "missing" and loc:
        parent = _walk(root, loc[:-1])
        line = _value_line(root, parent.loc)
        return line, DocumentError(f"{filename}:{line}: {_path((*parent.loc, loc[-1]))}: required")
    found = _walk(root, loc)
    if found.loc != loc and len(loc) > len(found.loc) and loc[len(found.loc)] == "[key]":
        line = _line(found.key) if found.key is not None else _line(found.node)  # a bad mapping key
    else:
        line = _value_line(root, found.loc)
    return line, DocumentError(f"{filename}:{line}: {_prefix(found.loc)}{message}")
