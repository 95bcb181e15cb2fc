"""registry:2 keys that change what the API does: read-only mode, extra response headers, and a
path prefix. Each app shares one in-memory store with a writable app that fills it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from registry.app import create_app
from registry.config import load_config
from storage_backends.memory import MemoryBackend
from tests.api.conftest import OCI_MANIFEST, digest_of, error_code, image_manifest, push_image


def app_for(backend: MemoryBackend, **env: str) -> Any:
    base = {"REGISTRY_STORAGE_INMEMORY": "", "REGISTRY_STORAGE_DELETE_ENABLED": "true"}
    return create_app(load_config(None, {**base, **env}), backend=backend)


@pytest.fixture
async def clients() -> AsyncIterator[Any]:
    opened: list[httpx.AsyncClient] = []

    def make(backend: MemoryBackend, **env: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app_for(backend, **env))
        client = httpx.AsyncClient(transport=transport, base_url="http://registry.test")
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


def assert_read_only(response: httpx.Response) -> None:
    assert response.status_code == 405, response.text
    assert error_code(response) == "UNSUPPORTED"
    assert "read-only" in response.json()["errors"][0]["message"]
    assert response.headers["allow"] == "GET, HEAD"


async def test_read_only_refuses_every_write_and_serves_every_read(clients: Any) -> None:
    backend = MemoryBackend()
    writer = clients(backend)
    digest, body = await push_image(writer, "ro/app", "v1")
    layer = digest_of(b"layer")
    pending = await writer.post("/v2/ro/app/blobs/uploads/")
    assert pending.status_code == 202
    upload = pending.headers["location"]
    before = dict(backend.files)

    reader = clients(backend, REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED="true")
    new = b"new layer"
    assert_read_only(await reader.post("/v2/ro/app/blobs/uploads/"))
    assert_read_only(await reader.post("/v2/ro/app/blobs/uploads/", params={"digest": digest_of(new)}, content=new))
    assert_read_only(await reader.post("/v2/ro/other/blobs/uploads/", params={"mount": layer, "from": "ro/app"}))
    assert_read_only(await reader.patch(upload, content=new))
    assert_read_only(await reader.put(upload, params={"digest": digest_of(new)}, content=new))
    assert_read_only(await reader.delete(upload))
    assert_read_only(await reader.put("/v2/ro/app/manifests/v2", content=body, headers={"Content-Type": OCI_MANIFEST}))
    assert_read_only(await reader.delete(f"/v2/ro/app/manifests/{digest}"))
    assert_read_only(await reader.delete("/v2/ro/app/manifests/v1"))
    assert_read_only(await reader.delete(f"/v2/ro/app/blobs/{layer}"))
    assert dict(backend.files) == before  # nothing was written, moved or deleted

    r = await reader.get("/v2/ro/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.content == body
    assert (await reader.head(f"/v2/ro/app/manifests/{digest}", headers={"Accept": OCI_MANIFEST})).status_code == 200
    r = await reader.get(f"/v2/ro/app/blobs/{layer}")
    assert r.status_code == 200 and r.content == b"layer"
    assert (await reader.get("/v2/ro/app/tags/list")).json()["tags"] == ["v1"]
    assert (await reader.get("/v2/_catalog")).json()["repositories"] == ["ro/app"]
    assert (await reader.get(f"/v2/ro/app/referrers/{digest}")).status_code == 200
    assert (await reader.get("/v2/")).status_code == 200


async def test_configured_headers_are_on_every_response(clients: Any, tmp_path: Any) -> None:
    config = tmp_path / "c.yml"
    config.write_text(
        "storage:\n  inmemory: {}\n  delete:\n    enabled: true\nhttp:\n  headers:\n"
        "    X-Content-Type-Options: [nosniff]\n    Strict-Transport-Security: max-age=63072000\n"
        "    Content-Type: text/plain\n"
    )
    app = create_app(load_config(config, {}), backend=MemoryBackend())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test") as client:
        await push_image(client, "h/app", "v1")
        responses = [
            await client.get("/v2/"),
            await client.get("/v2/h/app/tags/list"),
            await client.get("/v2/h/app/manifests/v1", headers={"Accept": OCI_MANIFEST}),
            await client.get("/v2/h/app/manifests/nope"),  # an error
            await client.get("/v2/nope/"),  # no such route
            await client.get("/healthz"),
            await client.get("/metrics"),
            await client.post("/v2/h/app/blobs/uploads/"),
        ]
    for r in responses:
        assert r.headers["x-content-type-options"] == "nosniff", r.request.url
        assert r.headers["strict-transport-security"] == "max-age=63072000", r.request.url
    # A handler's own header stays as the handler set it.
    assert responses[2].headers["content-type"] == OCI_MANIFEST
    assert responses[0].headers["content-type"] == "application/json"


@pytest.mark.parametrize("prefix", ["/registry/", "/a/b"])
async def test_prefix_serves_the_api_under_it_and_only_there(clients: Any, prefix: str) -> None:
    client = clients(MemoryBackend(), REGISTRY_HTTP_PREFIX=prefix)
    base = prefix.rstrip("/")
    r = await client.get(f"{base}/v2/")
    assert r.status_code == 200 and r.json() == {}
    # As distribution: the API is not also served at /v2/.
    r = await client.get("/v2/")
    assert r.status_code == 404 and r.json()["errors"]
    start = await client.post(f"{base}/v2/p/app/blobs/uploads/")
    assert start.status_code == 202
    assert start.headers["location"].startswith(f"{base}/v2/p/app/blobs/uploads/")
    data = b"prefixed"
    done = await client.put(start.headers["location"], params={"digest": digest_of(data)}, content=data)
    assert done.status_code == 201, done.text
    assert done.headers["location"] == f"{base}/v2/p/app/blobs/{digest_of(data)}"
    assert (await client.get(done.headers["location"])).content == data
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    start = await client.post(f"{base}/v2/p/app/blobs/uploads/", params={"digest": digest_of(config)}, content=config)
    assert start.status_code == 201 and start.headers["location"].startswith(f"{base}/v2/")
    manifest = image_manifest(config, [data])
    for tag in ("a", "b"):
        r = await client.put(
            f"{base}/v2/p/app/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"{base}/v2/p/app/manifests/{digest_of(manifest)}"
    r = await client.get(f"{base}/v2/p/app/tags/list", params={"n": 1})
    assert r.json()["tags"] == ["a"]
    assert r.headers["link"].startswith(f"<{base}/v2/p/app/tags/list?")
    assert (await client.get("/v2/p/app/tags/list")).status_code == 404


async def test_bad_prefix_and_headers_are_refused() -> None:
    from registry.config import ConfigError

    with pytest.raises(ConfigError, match=r"http\.prefix"):
        load_config(None, {"REGISTRY_HTTP_PREFIX": "registry"})
    with pytest.raises(ConfigError, match=r"http\.headers\.X-Bad"):
        load_config(None, {"REGISTRY_HTTP_HEADERS": '{"X-Bad": "a\\nb"}'})
