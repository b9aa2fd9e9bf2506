"""Documents on the command line: reading YAML files (or stdin) into validated documents, and how
each kind is sent to hived (`APPLIERS`), shared by `hivectl apply`, `hivectl workflow apply|validate`
and `hivectl agent spawn -f`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hivectl.cli import render
from hivectl.cli.common import CliError
from hivectl.cli.render import Output
from hivectl.client import Applied, Client
from hived.model.documents import (
    Document,
    DocumentError,
    YamlLimits,
    check_unique_names,
    expand_replicas,
    load_documents,
)
from hived.model.limits import LimitSpec
from hived.model.runs import AppliedWorkflow
from hived.model.schedules import ScheduleSpec
from hived.model.schemas import AgentSpec
from hived.model.workflow import WorkflowSpec
from hived.model.workflow_refs import apply_order, check_references


def read_text(name: str) -> str:
    """A file's text, or stdin's for `-`."""
    try:
        return sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"{name}: not UTF-8 text") from None


def load_files(files: list[str]) -> list[Document]:
    """Every document of every file, validated, names unique across the files."""
    documents: list[Document] = []
    try:
        limits = YamlLimits.from_env(os.environ)
        for name in files:
            documents += load_documents(read_text(name), "<stdin>" if name == "-" else name, limits)
        check_unique_names(documents)
        check_references(documents)
    except DocumentError as exc:
        raise CliError(str(exc)) from None
    return documents


def agent_specs(doc: Document) -> list[AgentSpec]:
    """The agents of an Agent document, replicas expanded; a relative `workdir` is taken from the
    document's folder (as docker-compose does), since hived's working directory is not the user's."""
    if not isinstance(doc.spec, AgentSpec):
        raise TypeError(f"not an Agent document: {doc.kind}")
    base = Path.cwd() if doc.filename == "<stdin>" else Path(doc.filename).resolve().parent
    specs = []
    for spec in expand_replicas(doc.spec):
        if spec.workdir:
            workdir = Path(spec.workdir).expanduser()
            if not workdir.is_absolute():
                workdir = (base / workdir).resolve()
            spec = spec.model_copy(update={"workdir": str(workdir)})
        if spec.workspace and "://" not in spec.workspace.git and not Path(spec.workspace.git).is_absolute():
            git = str((base / Path(spec.workspace.git).expanduser()).resolve())  # a folder, like workdir
            spec = spec.model_copy(update={"workspace": spec.workspace.model_copy(update={"git": git})})
        specs.append(spec)
    return specs


def _apply_agents(cli: Client, doc: Document, output: Output) -> list[Applied]:
    results = []
    for spec in agent_specs(doc):
        applied = cli.apply_agent(spec)
        if output is Output.table:
            print(render.applied_line(applied), flush=True)
        results.append(applied)
    return results


def applied_line(applied: AppliedWorkflow) -> str:
    return f"workflow/{applied.name} {applied.action} (version {applied.version})"


def _apply_workflow(cli: Client, doc: Document, output: Output) -> list[Any]:
    assert isinstance(doc.spec, WorkflowSpec)
    applied = cli.apply_workflow(doc.spec)
    if output is Output.table:
        print(applied_line(applied), flush=True)
    return [applied]


def _applier(noun: str, spec_type: type, send: Callable[[Client, Any], Any]) -> Callable[..., list[Any]]:
    """The applier of a kind sent whole by name (`PUT /<nouns>/{name}`), printing `noun/NAME action`."""

    def apply(cli: Client, doc: Document, output: Output) -> list[Any]:
        assert isinstance(doc.spec, spec_type)
        applied = send(cli, doc.spec)
        if output is Output.table:
            print(f"{noun}/{applied.name} {applied.action}", flush=True)
        return [applied]

    return apply


# kind -> how `apply` sends it.
APPLIERS: dict[str, Callable[[Client, Document, Output], list[Any]]] = {
    "Agent": _apply_agents,
    "Workflow": _apply_workflow,
    "Limit": _applier("limit", LimitSpec, Client.apply_limit),
    "Schedule": _applier("schedule", ScheduleSpec, Client.apply_schedule),
}


def apply_documents(cli: Client, documents: list[Document], output: Output) -> list[Any]:
    """Send each document by its kind's applier; a kind without one is refused before any is sent."""
    for doc in documents:
        if doc.kind not in APPLIERS:
            raise CliError(f"{doc.filename}:{doc.line}: kind: {doc.kind} cannot be applied yet")
    ordered = apply_order(documents)  # a sub-workflow before the workflows that run it
    return [applied for doc in ordered for applied in APPLIERS[doc.kind](cli, doc, output)]
