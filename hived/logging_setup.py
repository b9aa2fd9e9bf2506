"""hived's own log: to stderr (journald keeps it under systemd), plain text by default or one JSON
object per line (`--log-format json`), with secrets masked (hived.redact)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any, TextIO

from hived.redact import RedactFilter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# sd-daemon(3) priority prefixes: journald takes the level from them (journalctl -p warning works).
PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def under_journald(stream: TextIO) -> bool:
    """systemd sets JOURNAL_STREAM=DEV:INODE when stderr is connected to the journal."""
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return os.environ.get("JOURNAL_STREAM", "") == f"{st.st_dev}:{st.st_ino}"


class JournalFormatter(logging.Formatter):
    """`<PRIO>logger: message` on every line; journald adds the time itself."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        prefix = f"<{PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in text.splitlines())


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message"}` plus `exception` when there is one, and `method`,
    `path`, `status` for uvicorn's access log."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            _client, method, path, _version, status = record.args
            entry.update(method=method, path=path, status=status)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def text_formatter(stream: TextIO) -> logging.Formatter:
    return JournalFormatter() if under_journald(stream) else logging.Formatter(TEXT_FORMAT)


def configure(level: str, fmt: str, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else text_formatter(stream))
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # through the root handler, same format
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
