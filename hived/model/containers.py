"""`runtime:` on an Agent: its hive-agent runs in a container (podman) instead of as a process of
hived's user. Pure: the model and its checks; hived/agents/container.py builds podman's argv from it.

    runtime:
      container: localhost/hive:latest        # an image with hive-agent on its PATH, present locally
      mounts: [/srv/data:/data:ro]            # SOURCE[:TARGET][:ro|rw]; absolute paths
      network: none                           # none (default) or host

The agent's workdir is mounted (read-write, at its own path) and hived's socket directory at
/run/hive; nothing else of the host is in the container but `mounts`."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from hived.model.fields import Strict

SOCKET_MOUNT = "/run/hive"  # where hived's socket directory is mounted in an agent's container
IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$")
PATH_RE = re.compile(r"^/[^:,\x00-\x1f]*$")  # absolute; no ':' (podman's separator), no control chars
MAX_MOUNTS = 32


class Mount(Strict):
    source: str
    target: str
    read_only: bool = False

    def volume(self) -> str:
        """podman's `--volume` value."""
        return f"{self.source}:{self.target}:{'ro' if self.read_only else 'rw'}"


def parse_mount(text: str) -> Mount:
    """`SOURCE[:TARGET][:ro|rw]` (TARGET defaults to SOURCE); ValueError naming what is wrong."""
    parts = text.split(":")
    mode = parts.pop() if len(parts) > 1 and parts[-1] in ("ro", "rw") else "rw"
    if len(parts) not in (1, 2):
        raise ValueError(f"{text!r}: expected SOURCE[:TARGET][:ro|rw]")
    source, target = parts[0], parts[-1]
    for what, path in (("source", source), ("target", target)):
        if not PATH_RE.match(path):
            raise ValueError(f"{text!r}: the {what} must be an absolute path (no ',' or control characters)")
        if ".." in path.split("/"):
            raise ValueError(f"{text!r}: the {what} must not contain '..'")
    if target.rstrip("/") in ("", SOCKET_MOUNT) or target.startswith(SOCKET_MOUNT + "/"):
        raise ValueError(f"{text!r}: the target {target!r} is reserved (/, and {SOCKET_MOUNT} for hived)")
    return Mount(source=source.rstrip("/") or "/", target=target.rstrip("/"), read_only=mode == "ro")


class ContainerRuntime(Strict):
    """Where a spawned agent's hive-agent runs: a container of `container` (an image)."""

    container: str = Field(description="image with hive-agent on its PATH, present on hived's host")
    mounts: list[str] = Field(default_factory=list, max_length=MAX_MOUNTS)
    network: Literal["none", "host"] = "none"

    @field_validator("container")
    @classmethod
    def _image(cls, value: str) -> str:
        if not IMAGE_RE.match(value):
            raise ValueError("an image reference: letters, digits and . _ / : @ + -, not first a symbol")
        return value

    @field_validator("mounts")
    @classmethod
    def _mounts(cls, value: list[str]) -> list[str]:
        targets: set[str] = set()
        for text in value:
            mount = parse_mount(text)
            if mount.target in targets:
                raise ValueError(f"{text!r}: the target {mount.target!r} is mounted twice")
            targets.add(mount.target)
        return value

    def parsed_mounts(self) -> list[Mount]:
        return [parse_mount(text) for text in self.mounts]
