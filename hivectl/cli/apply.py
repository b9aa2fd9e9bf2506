"""`hivectl apply -f FILE`: validate every document first, then create or update each."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hivectl.cli.common import OutputOpt, client, fail
from hivectl.cli.render import Output, dump
from hived.api.schemas import AgentSpec
from hived.core.documents import DocumentError, expand_replicas, load_documents


def read_documents(files: list[str]) -> list[tuple[Path | None, Any]]:
    docs = []
    for name in files:
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
        except OSError as exc:
            raise fail(f"{name}: {exc.strerror}") from None
        try:
            docs += [
                (None if name == "-" else Path(name).resolve().parent, d) for d in load_documents(text, name)
            ]
        except DocumentError as exc:
            raise fail(str(exc)) from None
    return docs


def agent_body(spec: AgentSpec, base: Path | None) -> dict[str, Any]:
    """The API body; a relative `workdir` is taken from the document's folder (as docker-compose does)."""
    body = spec.model_dump(mode="json", exclude_defaults=True)
    body["name"] = spec.name
    if spec.workdir and base is not None and not Path(spec.workdir).is_absolute():
        body["workdir"] = str((base / spec.workdir).resolve())
    return body


def apply(
    ctx: typer.Context,
    files: Annotated[list[str], typer.Option("--file", "-f", help="YAML file (- for stdin), repeatable")],
    output: OutputOpt = Output.table,
) -> None:
    """Create or update the Agent documents of FILE (multi-document YAML)."""
    docs = read_documents(files)
    cli = client(ctx)
    results = []
    for base, doc in docs:
        for spec in expand_replicas(doc.spec):
            reply = cli.apply_agent(agent_body(spec, base))
            results.append(reply)
            if output is Output.table:
                typer.echo(f"agent/{spec.name} {reply['action']}")
    if output is not Output.table:
        dump(results, output)
