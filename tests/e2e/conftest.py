from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.s3server import S3Endpoint, s3_endpoint
from tests.servers import RegistryProcess, start_registry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    server = start_registry(tmp_path / "data")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_store() -> Iterator[S3Endpoint]:
    with s3_endpoint() as endpoint:
        yield endpoint


@pytest.fixture(params=["filesystem", "s3"])
def any_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryProcess]:
    """The registry on each storage backend: the client suites run against both."""
    config = None
    if request.param == "s3":
        endpoint: S3Endpoint = request.getfixturevalue("s3_store")
        config = tmp_path / "config.yml"
        config.write_text(yaml.safe_dump({"version": "0.1", "storage": {"s3": endpoint.options()}}))
    server = start_registry(tmp_path / "data", config=config)
    yield server
    server.stop()
