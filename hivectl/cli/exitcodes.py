"""hivectl's exit codes: the one place they are decided, and the text `hivectl --help` shows."""

from __future__ import annotations

from hivectl.client import ClientError, DaemonUnreachable, NotAuthorized

OK = 0
FAILURE = 1  # an API error (404, 409, 422...), a bad file, a task that did not complete with --wait
USAGE = 2  # a bad command line: unknown option, bad option value (Typer's own, and ours)
UNREACHABLE = 3  # no daemon at the endpoint
NOT_AUTHORIZED = 4  # the daemon refused the token
INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT

MEANINGS = {
    OK: "success",
    FAILURE: "failure (an API error, a bad file, a task that failed with --wait)",
    USAGE: "usage error",
    UNREACHABLE: "daemon not reachable",
    NOT_AUTHORIZED: "not authorized",
}

EPILOG = "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in MEANINGS.items()) + "."


def for_error(exc: ClientError) -> int:
    """The exit code of a client failure."""
    if isinstance(exc, DaemonUnreachable):
        return UNREACHABLE
    if isinstance(exc, NotAuthorized):
        return NOT_AUTHORIZED
    return FAILURE
