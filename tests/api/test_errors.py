"""The one error path: every exception a request raises, whatever its source, is answered by the
one handler with the spec's JSON body and the headers every response carries."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.base import AuthError, Challenge, Denied, TooManyRequests
from oci.errorcodes import ErrorCode
from registry.app import create_app
from registry.config import load_config
from storage_backends import BackendError, PathNotFound
from storage_backends.filesystem import FilesystemBackend
from tests.api.conftest import OCI_MANIFEST, digest_of, error_code, image_manifest, push_blob


class FaultyBackend(FilesystemBackend):
    """A filesystem backend on which chosen operations fail for keys containing a marker.

    `PathNotFound` stands for a lost race with a concurrent delete (the filesystem raises it when a
    delete prunes a directory a write is about to use); `RuntimeError` for a plain bug."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.faults: dict[str, tuple[str, Exception]] = {}

    def fail(self, operation: str, marker: str, error: Exception) -> None:
        self.faults[operation] = (marker, error)

    def _check(self, operation: str, key: str) -> None:
        fault = self.faults.get(operation)
        if fault is not None and fault[0] in key:
            raise fault[1]

    async def put(self, key: str, data: bytes) -> None:
        self._check("put", key)
        await super().put(key, data)

    async def stat(self, key: str) -> Any:
        self._check("stat", key)
        return await super().stat(key)

    async def list(self, prefix: str, after: str | None = None, limit: int | None = None) -> list[str]:
        self._check("list", prefix)
        return await super().list(prefix, after, limit)

    async def move(self, src: str, dst: str) -> None:
        self._check("move", src)
        await super().move(src, dst)


@pytest.fixture
def backend(tmp_path: Path) -> FaultyBackend:
    return FaultyBackend(root=tmp_path / "data")


@pytest.fixture
async def client(backend: FaultyBackend) -> AsyncIterator[httpx.AsyncClient]:
    env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(backend.root), "REGISTRY_STORAGE_DELETE_ENABLED": "true"}
    app = create_app(load_config(None, env), backend=backend)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test") as c:
        yield c


def _assert_common_headers(r: httpx.Response) -> None:
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    assert r.headers["x-request-id"]
    assert r.headers["content-type"] == "application/json"


async def test_an_unexpected_exception_is_a_logged_500_with_the_usual_headers(
    client: httpx.AsyncClient, backend: FaultyBackend, caplog: pytest.LogCaptureFixture
) -> None:
    digest = await push_blob(client, "err/bug", b"content")
    backend.fail("stat", "blobs/sha256", RuntimeError("secret internals of the failure"))
    with caplog.at_level(logging.ERROR, logger="dockyard"):
        r = await client.get(f"/v2/err/bug/blobs/{digest}", headers={"X-Request-Id": "req-0123456789"})
    assert r.status_code == 500
    _assert_common_headers(r)
    assert r.headers["x-request-id"] == "req-0123456789"
    assert r.json() == {
        "errors": [{"code": "UNKNOWN", "message": "unknown error", "detail": {"request_id": "req-0123456789"}}]
    }
    assert "secret" not in r.text and "Traceback" not in r.text
    logged = [rec for rec in caplog.records if rec.exc_info and "req-0123456789" in rec.getMessage()]
    assert logged and "secret internals" in str(logged[0].exc_info[1])  # type: ignore[index]


async def test_a_storage_failure_is_a_503_with_the_usual_headers(
    client: httpx.AsyncClient, backend: FaultyBackend
) -> None:
    digest = await push_blob(client, "err/storage", b"content")
    backend.fail("stat", "blobs/sha256", BackendError("disk on fire"))
    r = await client.head(f"/v2/err/storage/blobs/{digest}")
    assert r.status_code == 503
    _assert_common_headers(r)
    r = await client.get(f"/v2/err/storage/blobs/{digest}")
    assert r.status_code == 503 and error_code(r) == "UNAVAILABLE"
    assert "disk on fire" not in r.text


async def test_content_vanishing_mid_request_is_unknown_in_the_route_s_own_terms(
    client: httpx.AsyncClient, backend: FaultyBackend
) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    await push_blob(client, "err/race", config)
    await push_blob(client, "err/race", b"layer")
    body = image_manifest(config, [b"layer"])
    assert (await client.put("/v2/err/race/manifests/v1", content=body)).status_code == 201

    backend.fail("put", "_manifests/tags", PathNotFound("_manifests/tags"))
    r = await client.put("/v2/err/race/manifests/v2", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"

    backend.fail("list", "_manifests/tags", PathNotFound("_manifests/tags"))
    r = await client.get("/v2/err/race/tags/list")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"

    location = (await client.post("/v2/err/race/blobs/uploads/")).headers["location"]
    backend.fail("move", "_uploads", PathNotFound("_uploads"))
    r = await client.put(location, params={"digest": digest_of(b"late")}, content=b"late")
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"


async def test_unknown_paths_and_methods_answer_json_with_the_usual_headers(client: httpx.AsyncClient) -> None:
    for method, path, status in [
        ("GET", "/nowhere", 404),  # outside /v2/: Starlette's own router
        ("GET", "/v2/app/nowhere", 404),
        ("DELETE", "/v2/", 405),
        ("POST", "/healthz", 405),
    ]:
        r = await client.request(method, path)
        assert r.status_code == status, (method, path, r.status_code)
        _assert_common_headers(r)
        assert error_code(r) == "UNSUPPORTED", (method, path)


def test_auth_refusals_carry_codes_of_the_one_table() -> None:
    for refusal, code in [(Challenge, "UNAUTHORIZED"), (Denied, "DENIED"), (TooManyRequests, "TOOMANYREQUESTS")]:
        error = refusal("no")
        assert isinstance(error, AuthError)
        assert error.code is ErrorCode[code]
        assert error.status == ErrorCode[code].status
