"""Fixtures of the container tests: the Hive image (built once per source state), and a hived whose
socket has a directory of its own (container agents mount that directory, never the state dir)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.containers.podman import hive_image, podman
from tests.helpers import Hived


@pytest.fixture(scope="session")
def image() -> str:
    return hive_image()


@pytest.fixture
def boxed_hived(
    image: str, hived_factory: Callable[..., Hived], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hived]:
    hived = hived_factory(socket=tmp_path_factory.mktemp("run") / "hived.sock")
    yield hived
    hived.stop()  # its agents' containers stop with it; any left by a failed test go too
    listed = podman("ps", "--all", "--filter", "label=hive.agent", "--format", "{{.Names}} {{.Mounts}}")
    for line in listed.stdout.splitlines():
        name, mounts = line.split(" ", 1)
        if str(hived.state_dir) in mounts:
            podman("rm", "--force", "--time", "0", name, check=False)
