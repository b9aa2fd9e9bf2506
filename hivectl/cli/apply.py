"""`hivectl apply -f FILE...`: validate every document of every file first, then create or update each.

A bad document anywhere means nothing is sent.
"""

from __future__ import annotations

from typing import Annotated

import typer

from hivectl.cli import render
from hivectl.cli.common import OutputOpt, client
from hivectl.cli.documents import apply_documents, load_files
from hivectl.cli.render import Output


def apply(
    ctx: typer.Context,
    files: Annotated[
        list[str],
        typer.Option(
            "--file", "-f", help="a YAML file of documents (- for stdin); repeatable", show_default=False
        ),
    ],
    output: OutputOpt = Output.table,
) -> None:
    """Create or update what the YAML documents describe (kind: Agent, Workflow), like kubectl apply.

    Prints `agent/NAME created|configured|unchanged` for each agent (replicas: NAME-1..NAME-N) and
    `workflow/NAME created|updated|unchanged (version N)` for each workflow.
    """
    documents = load_files(files)
    results = apply_documents(client(ctx), documents, output)
    if output is not Output.table:
        render.emit(results, output, lambda: "")
