from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from tests.servers import DockerEngine, RegistryProcess, start_dockerd, start_registry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    server = start_registry(tmp_path / "data")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    require_root()
    require_tool("dockerd")
    require_tool("docker")
    engine = start_dockerd(tmp_path_factory.mktemp("dockerd"))
    yield engine
    engine.stop()
