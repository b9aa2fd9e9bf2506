"""Fixtures of the container tests: the Hive image (built once per source state), and a hived whose
socket has a directory of its own (container agents mount that directory, never the state dir)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.containers.podman import hive_image
from tests.helpers import Hived


@pytest.fixture(scope="session")
def image() -> str:
    return hive_image()


@pytest.fixture
def boxed_hived(
    image: str, hived_factory: Callable[..., Hived], tmp_path_factory: pytest.TempPathFactory
) -> Hived:
    return hived_factory(socket=tmp_path_factory.mktemp("run") / "hived.sock")
