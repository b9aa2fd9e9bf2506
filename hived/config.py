"""hived's settings in one place: `hived.yaml` (a `kind: Daemon` document plus the `kind: Agent`
documents to keep running), overridden by environment variables, overridden by flags."""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from hived.bounds import Limits
from hived.model import paths
from hived.model.documents import KINDS, DocumentError, YamlLimits, expand_replicas, load_documents
from hived.model.limits import LimitSpec
from hived.model.schemas import NAME_RE as NODE_NAME_RE
from hived.model.schemas import AgentSpec, Duration, Size, Strict
from hived.model.usage import Budget


class DaemonConfig(Strict):
    """The `kind: Daemon` document of hived.yaml."""

    state_dir: str | None = None
    database: str | None = None
    socket: str | None = None
    stop_grace: Duration = 10.0
    drain_grace: Duration = 10.0
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    listen: str | None = Field(default=None, description="HOST:PORT of the TCP listener (tokens required)")
    tls_cert: str | None = None
    tls_key: str | None = None
    allowed_hosts: list[str] = Field(default_factory=list)
    allowed_origins: list[str] = Field(default_factory=list)
    max_request_bytes: Size = Field(default=10 * 2**20, ge=1024)
    max_payload_bytes: Size = Field(default=2**20, ge=64, description="a task's payload, as JSON")
    max_result_bytes: Size = Field(default=2**20, ge=64, description="a task's result, as JSON")
    max_output_bytes: Size = Field(default=64 * 2**10, ge=256, description="output and error text kept")
    max_page_size: int = Field(default=5000, ge=1, le=1_000_000, description="largest `limit` of a list")
    max_page_bytes: Size = Field(
        default=16 * 2**20, ge=2**16, description="payloads and results in one page of tasks, as JSON"
    )
    socket_group: str | None = Field(default=None, description="operators' group: socket mode 0660")
    standby: bool = Field(default=False, description="wait while another hived owns the database")
    agent_log_max_bytes: int = Field(default=10 * 2**20, ge=4096)
    agent_log_retention: int = Field(default=5, ge=1, le=1000)
    header_timeout: Duration = Field(default=10.0, gt=0, le=600, description="to send request headers")
    max_connections: int | None = Field(
        default=None, ge=1, description="per TCP listener (default: 4096, at most half the open-files limit)"
    )
    max_event_streams: int = Field(default=256, ge=1, description="/events streams at once, per listener")
    max_event_streams_per_token: int = Field(default=16, ge=1, description="/events streams of one token")
    budget_per_day: Budget | None = Field(default=None, description="what all tasks may spend per UTC day")
    max_event_lag: int = Field(
        default=5000, ge=10, le=9000, description="events a stream may fall behind before it is closed"
    )
    node: str | None = Field(
        default=None, description="this hived's node name (PostgreSQL; default: the host name)"
    )
    node_timeout: Duration = Field(default=15.0, ge=1, le=3600, description="a node silent this long is lost")
    max_artifact_bytes: Size = Field(default=10 * 2**20, ge=1, description="one artifact file")
    max_attempt_artifacts_bytes: Size = Field(default=50 * 2**20, ge=1, description="an attempt's artifacts")
    max_diff_bytes: Size = Field(default=2**20, ge=1024, description="an attempt's stored workspace diff")


KINDS.setdefault("Daemon", DaemonConfig.model_validate)


@dataclass(frozen=True)
class Serving:
    """The bounds of hived's listeners (connections, incomplete requests, event streams)."""

    header_timeout: float = 10.0
    max_connections: int | None = None
    max_event_streams: int = 256
    max_event_streams_per_token: int = 16
    max_event_lag: int = 5000


@dataclass
class Settings:
    state_dir: Path
    database: str
    socket: Path
    stop_grace: float = 10.0
    drain_grace: float = 10.0
    log_level: str = "info"
    log_format: str = "text"
    listen: tuple[str, int] | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    allowed_hosts: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    socket_group: str | None = None
    standby: bool = False
    agent_log_max_bytes: int = 10 * 2**20
    agent_log_retention: int = 5
    serving: Serving = field(default_factory=lambda: Serving())
    agents: list[AgentSpec] = field(default_factory=list)
    declared_limits: list[LimitSpec] = field(default_factory=list)  # kind: Limit in hived.yaml
    budget_per_day: Budget | None = None  # kind: Daemon's budget_per_day
    node: str = ""  # this hived's node name (hived.nodes); "" on SQLite
    node_timeout: float = 15.0


def load_file(path: str) -> tuple[DaemonConfig, list[AgentSpec], list[LimitSpec]]:
    """Parse and validate hived.yaml (kind Daemon, Agent, Limit); DocumentError (FILE:LINE: ...)
    on any problem."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise DocumentError(f"{path}: {exc.strerror}") from None
    daemon = DaemonConfig()
    agents: list[AgentSpec] = []
    limits: list[LimitSpec] = []
    seen_daemon = False
    for doc in load_documents(text, path, YamlLimits.from_env(os.environ)):
        if isinstance(doc.spec, DaemonConfig):
            if seen_daemon:
                raise DocumentError(f"{path}:{doc.line}: a second kind: Daemon document")
            daemon, seen_daemon = doc.spec, True
        elif isinstance(doc.spec, AgentSpec):
            agents += expand_replicas(doc.spec)
        elif isinstance(doc.spec, LimitSpec):  # (a name given twice is refused by the loader)
            limits.append(doc.spec)
        else:
            raise DocumentError(f"{path}:{doc.line}: kind {doc.kind} does not belong in hived's config")
    names = [a.name for a in agents]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise DocumentError(f"{path}: agent names declared twice: {', '.join(dupes)}")
    return daemon, agents, limits


def input_limits(daemon: DaemonConfig) -> Limits:
    return Limits(
        max_request_bytes=daemon.max_request_bytes,
        max_payload_bytes=daemon.max_payload_bytes,
        max_result_bytes=daemon.max_result_bytes,
        max_output_bytes=daemon.max_output_bytes,
        max_page_size=daemon.max_page_size,
        max_page_bytes=daemon.max_page_bytes,
        max_artifact_bytes=daemon.max_artifact_bytes,
        max_attempt_artifacts_bytes=daemon.max_attempt_artifacts_bytes,
        max_diff_bytes=daemon.max_diff_bytes,
    )


def resolve(config_path: str | None, flags: dict[str, object]) -> Settings:
    """Flags beat environment variables, which beat the file, which beats the defaults."""
    daemon, agents, declared_limits = load_file(config_path) if config_path else (DaemonConfig(), [], [])
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
    listen = parse_listen(str(flags.get("listen") or env.get("HIVE_LISTEN") or daemon.listen or ""))
    tls_cert = str(flags.get("tls_cert") or daemon.tls_cert or "") or None
    tls_key = str(flags.get("tls_key") or daemon.tls_key or "") or None
    if bool(tls_cert) != bool(tls_key):
        raise DocumentError("tls_cert and tls_key: give both (or neither)")
    if tls_cert and not listen:
        raise DocumentError("tls_cert: TLS is for the TCP listener; give listen: HOST:PORT too")
    if tls_cert and tls_key:
        check_tls(tls_cert, tls_key)
    return Settings(
        state_dir=state,
        database=database,
        socket=Path(str(socket)).expanduser(),
        stop_grace=float(pick("stop_grace", daemon.stop_grace)),  # type: ignore[arg-type]
        drain_grace=float(pick("drain_grace", daemon.drain_grace)),  # type: ignore[arg-type]
        log_level=str(pick("log_level", daemon.log_level)),
        log_format=log_format,
        listen=listen,
        tls_cert=tls_cert,
        tls_key=tls_key,
        allowed_hosts=[h.lower() for h in daemon.allowed_hosts],
        allowed_origins=list(daemon.allowed_origins),
        limits=input_limits(daemon),
        socket_group=daemon.socket_group,
        standby=bool(pick("standby", daemon.standby)),
        agent_log_max_bytes=daemon.agent_log_max_bytes,
        agent_log_retention=daemon.agent_log_retention,
        serving=Serving(
            header_timeout=float(daemon.header_timeout),
            max_connections=daemon.max_connections,
            max_event_streams=daemon.max_event_streams,
            max_event_streams_per_token=daemon.max_event_streams_per_token,
            max_event_lag=daemon.max_event_lag,
        ),
        agents=agents,
        declared_limits=declared_limits,
        budget_per_day=daemon.budget_per_day,
        node=node_name(database, flags.get("node") or env.get("HIVE_NODE") or daemon.node),
        node_timeout=float(daemon.node_timeout),
    )


def node_name(database: str, given: object) -> str:
    """This hived's node name: on PostgreSQL the one given or the host name; SQLite has no nodes."""
    if not database.startswith("postgresql"):
        if given:
            raise DocumentError("node: nodes need a PostgreSQL database (SQLite is one node)")
        return ""
    name = str(given or socket.gethostname().split(".")[0].lower())
    if not NODE_NAME_RE.match(name):
        raise DocumentError(f"node: {name!r} must be 1-63 lowercase letters, digits, '.', '_' or '-'")
    return name


def check_tls(cert: str, key: str) -> None:
    """Load the certificate chain and its key as the TLS listener will: a missing file, a file that is
    not PEM, or a key of another certificate is an error now, not a listener that hangs later."""
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise DocumentError(f"{name}: {path}: {exc.strerror or exc}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_verify_locations(cafile=cert)
    except (ssl.SSLError, ValueError):
        raise DocumentError(f"tls_cert: {cert} is not a PEM certificate") from None
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except _EncryptedKey:
        raise DocumentError(f"tls_key: {key} is encrypted; give hived a key without a passphrase") from None
    except ssl.SSLError as exc:
        if getattr(exc, "reason", None) == "KEY_VALUES_MISMATCH":
            raise DocumentError(f"tls_key: {key} does not match the certificate tls_cert: {cert}") from None
        raise DocumentError(f"tls_key: {key} is not a PEM private key ({exc})") from None


class _EncryptedKey(Exception):
    pass


def _no_password() -> str:
    raise _EncryptedKey


def parse_listen(value: str) -> tuple[str, int] | None:
    """`HOST:PORT` (`[::1]:8700` for IPv6) of the TCP listener; empty: none."""
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise DocumentError(f"listen: {value!r} is not HOST:PORT (e.g. 127.0.0.1:8700)")
    return host.strip("[]"), int(port)
