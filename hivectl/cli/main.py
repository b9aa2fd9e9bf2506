"""`hivectl`: the command line of Hive, in kubectl's habits (nouns, verbs, `-o json` for scripts).

This module is the entry point only, kept small for start-up time: `hivectl --version` answers
without importing the command line (typer); everything else is `hivectl.cli.app`, whose commands are
thin (parse, call the client, render) and imported only when they run. `bench/cli.py` measures it.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import NoReturn


def main(argv: list[str] | None = None) -> int:
    """Run hivectl; returns the exit code (never raises, never prints a traceback)."""
    if (sys.argv[1:] if argv is None else argv) == ["--version"]:
        from hived.model import __version__

        print(f"hivectl {__version__}")
        return 0
    # httpx imports its own command line (click, rich, pygments: ~25 ms) whenever those are installed;
    # None here makes that import fail at once, and httpx defines a stub `httpx.main` instead.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    # Start-up allocates many objects and frees few: collecting them is ~8 % of a short command. The
    # collector is on again once the command reaches hived (`common.started`) and when it ends.
    gc.disable()
    try:
        from hivectl.cli.app import run

        return run(argv)
    finally:
        gc.enable()


def cli() -> NoReturn:
    """The `hivectl` executable: `main`, then exit without tearing the interpreter down (freeing
    every module one by one is ~20 ms once pydantic, httpx and rich are in). Under coverage.py the
    ordinary exit is kept, since it saves its data at exit."""
    code = main()
    if "coverage" in sys.modules:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader left, or the stream is closed
            pass
    os._exit(code)


if __name__ == "__main__":
    cli()
