"""The `backend` fixture: one storage contract, every backend. A new backend joins the suite by
adding a row to `OPENERS`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage_backends import StorageBackend, open_backend
from storage_backends.options import FilesystemOptions, S3Options
from tests.s3server import S3Endpoint, s3_endpoint
from typedconfig import build

# Small S3 sizes so that multipart uploads and multipart copies run on a few MiB of test data.
S3_TEST_SIZES = {
    "chunksize": 5 * 1024 * 1024,
    "multipartcopychunksize": 5 * 1024 * 1024,
    "multipartcopythresholdsize": 5 * 1024 * 1024,
}


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Endpoint]:
    with s3_endpoint() as endpoint:
        yield endpoint


class Opener:
    """Opens instances of one backend on one store: a second instance stands for another replica."""

    def __init__(self, name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.name = name
        self.options: Any = None
        self._shared: StorageBackend | None = None
        if name == "filesystem":
            self.options = FilesystemOptions(rootdirectory=str(tmp_path / "store"))
        elif name == "s3":
            endpoint: S3Endpoint = request.getfixturevalue("s3")
            self.endpoint = endpoint
            self.options = build(S3Options, endpoint.options(**S3_TEST_SIZES), "storage.s3")

    def open(self) -> StorageBackend:
        if self.name == "inmemory":
            # Nothing is shared between two memory backends: every "replica" is the same object.
            if self._shared is None:
                self._shared = open_backend("inmemory", None)
            return self._shared
        return open_backend(self.name, self.options)

    def raw_leftovers(self) -> list[str]:
        if self.name == "s3":
            return self.endpoint.keys(self.options.rootdirectory + "/")
        if self.name == "filesystem":
            root = Path(self.options.rootdirectory)
            return [str(p) for p in root.rglob("*")] if root.exists() else []
        return []


OPENERS = ["inmemory", "filesystem", "s3"]


@pytest.fixture(params=OPENERS)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    return Opener(request.param, request, tmp_path)


@pytest.fixture
async def backend(opener: Opener) -> AsyncIterator[StorageBackend]:
    backend = opener.open()
    yield backend
    leftovers = await backend.list("")
    await backend.close()
    assert leftovers == [], f"the test left keys behind: {leftovers}"
    assert opener.raw_leftovers() == [], "the backend left objects or uploads behind"


@pytest.fixture
def replica(opener: Opener, backend: StorageBackend) -> Callable[[], StorageBackend]:
    """Another instance on the same store, as another replica would open it."""
    return opener.open
