"""The example sandboxed agent (deploy/examples/sandboxed-agent.yaml), as documented: it reads what is
mounted for it, and a file of the host's home directory is not there for it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from hived.model.documents import load_documents
from hived.model.schemas import AgentSpec
from tests.helpers import REPO, Hived

# The first test to run builds the image (about a minute, several when the machine is busy).
pytestmark = pytest.mark.timeout(900)

EXAMPLE = REPO / "deploy" / "examples" / "sandboxed-agent.yaml"


def test_the_sandboxed_example_cannot_read_the_hosts_home(boxed_hived: Hived, image: str) -> None:
    (doc,) = load_documents(EXAMPLE.read_text(), EXAMPLE.name)
    assert isinstance(doc.spec, AgentSpec) and doc.spec.runtime is not None
    assert doc.spec.runtime.container == "localhost/hive:latest"
    runtime = doc.spec.runtime.model_copy(update={"container": image})  # these sources' build of it
    spec = doc.spec.model_copy(update={"runtime": runtime}).model_dump(mode="json", exclude={"name"})
    boxed_hived.spawn("sandboxed", spec.pop("handler"), **spec)

    mounted = boxed_hived.wait_task(boxed_hived.submit("sandboxed", payload={"read": "/data/hostname"})["id"])
    assert mounted["status"] == "completed"
    assert mounted["result"] == {"text": Path("/etc/hostname").read_text()}

    with tempfile.NamedTemporaryFile("w", dir=Path.home(), prefix=".hive-test-", suffix=".txt") as private:
        private.write("the host user's own")
        private.flush()
        assert Path(private.name).read_text() == "the host user's own"  # the host can read it
        task = boxed_hived.submit("sandboxed", payload={"read": private.name}, max_attempts=1)
        peek = boxed_hived.wait_task(task["id"])
    assert peek["status"] == "failed"
    assert f"FileNotFoundError: [Errno 2] No such file or directory: '{private.name}'" in peek["error"]
