"""Every default path of Hive, decided in one place (the daemon and its clients share it)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """The state directory: database, agent logs, workdirs. `HIVE_STATE_DIR` overrides."""
    if env := os.environ.get("HIVE_STATE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hive"


def socket_path() -> Path:
    """The API socket: `HIVE_SOCKET`, else `$XDG_RUNTIME_DIR/hive/hived.sock`, else in the state dir."""
    if env := os.environ.get("HIVE_SOCKET"):
        return Path(env).expanduser()
    if os.environ.get("HIVE_STATE_DIR"):
        # An explicit state dir keeps the whole instance together (tests, several daemons per host).
        return state_dir() / "hived.sock"
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        return Path(runtime) / "hive" / "hived.sock"
    return state_dir() / "hived.sock"


def database_url(state: Path | None = None) -> str:
    """`HIVE_DB`, else the embedded SQLite file `hive.db` in the state dir."""
    if env := os.environ.get("HIVE_DB"):
        return env
    return f"sqlite:///{(state or state_dir()) / 'hive.db'}"


def agent_dir(state: Path, name: str) -> Path:
    """Per-agent folder: its logs live here, and its default workdir below it."""
    return state / "agents" / name


def pid_file(state: Path) -> Path:
    """Written by `hivectl daemon start` for the background hived."""
    return state / "hived.pid"
