"""hived's settings in one place: `hived.yaml` (a `kind: Daemon` document plus the `kind: Agent`
documents to keep running), overridden by environment variables, overridden by flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from hived import paths
from hived.api.schemas import AgentSpec, Duration, Strict
from hived.core.documents import KINDS, DocumentError, expand_replicas, load_documents


class DaemonConfig(Strict):
    """The `kind: Daemon` document of hived.yaml."""

    state_dir: str | None = None
    database: str | None = None
    socket: str | None = None
    stop_grace: Duration = 10.0
    drain_grace: Duration = 10.0
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    agent_log_max_bytes: int = Field(default=10 * 2**20, ge=4096)
    agent_log_retention: int = Field(default=5, ge=1, le=1000)


KINDS.setdefault("Daemon", DaemonConfig.model_validate)


@dataclass
class Settings:
    state_dir: Path
    database: str
    socket: Path
    stop_grace: float = 10.0
    drain_grace: float = 10.0
    log_level: str = "info"
    log_format: str = "text"
    agent_log_max_bytes: int = 10 * 2**20
    agent_log_retention: int = 5
    agents: list[AgentSpec] = field(default_factory=list)


def load_file(path: str) -> tuple[DaemonConfig, list[AgentSpec]]:
    """Parse and validate hived.yaml; DocumentError (FILE:LINE: ...) on any problem."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise DocumentError(f"{path}: {exc.strerror}") from None
    daemon = DaemonConfig()
    agents: list[AgentSpec] = []
    seen_daemon = False
    for doc in load_documents(text, path):
        if isinstance(doc.spec, DaemonConfig):
            if seen_daemon:
                raise DocumentError(f"{path}:{doc.line}: a second kind: Daemon document")
            daemon, seen_daemon = doc.spec, True
        elif isinstance(doc.spec, AgentSpec):
            agents += expand_replicas(doc.spec)
        else:
            raise DocumentError(f"{path}:{doc.line}: kind {doc.kind} does not belong in hived's config")
    names = [a.name for a in agents]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise DocumentError(f"{path}: agent names declared twice: {', '.join(dupes)}")
    return daemon, agents


def resolve(config_path: str | None, flags: dict[str, object]) -> Settings:
    """Flags beat environment variables, which beat the file, which beats the defaults."""
    daemon, agents = load_file(config_path) if config_path else (DaemonConfig(), [])
    env = os.environ
    state = Path(
        str(flags.get("state_dir") or env.get("HIVE_STATE_DIR") or daemon.state_dir or paths.state_dir())
    ).expanduser()
    socket = flags.get("socket") or env.get("HIVE_SOCKET") or daemon.socket
    if not socket:
        socket = state / "hived.sock" if (flags.get("state_dir") or daemon.state_dir) else paths.socket_path()
    database = str(flags.get("db") or env.get("HIVE_DB") or daemon.database or paths.database_url(state))

    def pick(name: str, default: object) -> object:
        return flags[name] if flags.get(name) is not None else default

    log_format = str(pick("log_format", env.get("HIVE_LOG_FORMAT") or daemon.log_format))
    if log_format not in ("text", "json"):
        raise DocumentError(f"HIVE_LOG_FORMAT: {log_format!r} is not text or json")
    return Settings(
        state_dir=state,
        database=database,
        socket=Path(str(socket)).expanduser(),
        stop_grace=float(pick("stop_grace", daemon.stop_grace)),  # type: ignore[arg-type]
        drain_grace=float(pick("drain_grace", daemon.drain_grace)),  # type: ignore[arg-type]
        log_level=str(pick("log_level", daemon.log_level)),
        log_format=log_format,
        agent_log_max_bytes=daemon.agent_log_max_bytes,
        agent_log_retention=daemon.agent_log_retention,
        agents=agents,
    )
