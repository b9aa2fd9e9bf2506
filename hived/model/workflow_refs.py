"""Checks across the workflow documents of a set of files (offline, FILE:LINE): the sub-workflows a
`workflow:` step runs, when they are among the files (their params, cycles), and the order in which to
apply them (a sub-workflow before the workflows that run it: hived refuses an unknown one)."""

from __future__ import annotations

from collections.abc import Sequence

from hived.model.documents import Document, field_error
from hived.model.subflows import reference_problems, runs_of
from hived.model.workflow import WorkflowSpec


def check_references(documents: Sequence[Document]) -> None:
    """DocumentError at the first problem of a `workflow:` step whose workflow is in `documents`."""
    workflows = {doc.spec.name: doc for doc in documents if isinstance(doc.spec, WorkflowSpec)}
    definitions = {name: doc.spec.definition() for name, doc in workflows.items()}  # type: ignore[attr-defined]
    for name, doc in workflows.items():
        assert isinstance(doc.spec, WorkflowSpec)
        others = {other: d for other, d in definitions.items() if other != name}
        for path, message in reference_problems(doc.spec, others, strict=False)[:1]:
            raise field_error(doc.filename, doc.node, path, message)


def apply_order(documents: Sequence[Document]) -> list[Document]:
    """`documents` with every workflow after those of the set it runs (others keep their place)."""
    workflows = {doc.spec.name: doc for doc in documents if isinstance(doc.spec, WorkflowSpec)}
    ordered: list[Document] = []
    placed: set[str] = set()

    def place(name: str) -> None:
        if name in placed or name not in workflows:
            return
        placed.add(name)  # before its children: a cycle (refused by check_references) cannot loop
        for child in runs_of(workflows[name].spec.definition()):  # type: ignore[attr-defined]
            place(child)
        ordered.append(workflows[name])

    for doc in documents:
        if isinstance(doc.spec, WorkflowSpec):
            place(doc.spec.name)
        else:
            ordered.append(doc)
    return ordered
