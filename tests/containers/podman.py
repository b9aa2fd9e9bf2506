"""The container tests' podman: whether it can run containers here (skipped with the reason when it
cannot; a failure under CI=true, where .ci/run installs it), and the Hive image they run, built once by
deploy/build-image.sh and reused while the sources it is built from are unchanged."""

from __future__ import annotations

import fcntl
import hashlib
import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from hived.agents.container import engine
from tests.helpers import REPO

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BASE = os.environ.get("HIVE_BASE_IMAGE", "localhost/hive-base:bookworm")
IMAGE_REPO = "localhost/hive-test"
SOURCES = ["hived", "hivectl", "tui", "pyproject.toml", "deploy/Containerfile", "deploy/healthz.py",
           "deploy/build-image.sh", "deploy/strip_wheels.py"]  # fmt: skip
_problem: list[str | None] = []


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*engine(dict(os.environ)), *args], capture_output=True, text=True, check=check, timeout=timeout
    )


def ulimits() -> list[str]:
    """What hived passes to its agents' containers: this host's open files, at most 4096 processes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return ["--ulimit", f"nofile={soft}:{hard}", "--ulimit", "nproc=4096:4096"]


def _why_not() -> str | None:
    if shutil.which(engine(dict(os.environ))[0]) is None:
        return "podman is not installed (apt-get install podman mmdebstrap runc; .ci/run does)"
    try:
        info = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
    except subprocess.TimeoutExpired:
        return "podman info did not answer in 60s"
    if info.returncode != 0:
        return f"podman cannot run here: {info.stderr.strip().splitlines()[-1:]}"
    if podman("image", "exists", BASE, check=False).returncode != 0 and not shutil.which("mmdebstrap"):
        return f"no base image {BASE} and no mmdebstrap to make it (apt-get install mmdebstrap)"
    return None


def require_podman() -> None:
    if not _problem:
        _problem.append(_why_not())
    if (problem := _problem[0]) is not None:
        if IN_CI:
            pytest.fail(f"{problem}, but CI=true: the container tests must run in CI")
        pytest.skip(problem)


def source_digest() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        root = REPO / name
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def hive_image() -> str:
    """The Hive image of these sources (built if it is not there yet; one build at a time)."""
    require_podman()
    image = f"{IMAGE_REPO}:{source_digest()}"
    with open(Path(os.environ.get("TMPDIR", "/tmp")) / "hive-test-image.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if podman("image", "exists", image, check=False).returncode != 0:
            built = subprocess.run(
                [str(REPO / "deploy" / "build-image.sh"), image], capture_output=True, text=True, timeout=900
            )
            assert built.returncode == 0, f"deploy/build-image.sh failed:\n{built.stdout}\n{built.stderr}"
            _forget_older(image)
    return image


def _forget_older(image: str) -> None:
    """Images of earlier sources go (those still in use by a container stay)."""
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_REPO, check=False).stdout
    for old in set(listed.split()) - {image}:
        podman("rmi", old, check=False)
