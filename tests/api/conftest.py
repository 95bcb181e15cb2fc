from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from registry.app import create_app
from registry.config import load_config
from storage_backends.memory import MemoryBackend

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def make_app(delete: bool = True, backend: MemoryBackend | None = None) -> Any:
    env = {"REGISTRY_STORAGE_INMEMORY": "", "REGISTRY_STORAGE_DELETE_ENABLED": str(delete).lower()}
    return create_app(load_config(None, env), backend=backend or MemoryBackend())


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as c:
        yield c


async def push_blob(client: httpx.AsyncClient, name: str, data: bytes) -> str:
    digest = digest_of(data)
    r = await client.post(f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202, r.text
    r = await client.put(r.headers["location"], params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    return digest


def image_manifest(config: bytes, layers: list[bytes], **extra: Any) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(x), "size": len(x)} for x in layers],
        **extra,
    }
    return json.dumps(doc).encode()


async def push_image(
    client: httpx.AsyncClient, name: str, tag: str, layer: bytes = b"layer", **extra: Any
) -> tuple[str, bytes]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    await push_blob(client, name, config)
    await push_blob(client, name, layer)
    body = image_manifest(config, [layer], **extra)
    r = await client.put(f"/v2/{name}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, r.text
    return r.headers["docker-content-digest"], body


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert isinstance(body["errors"], list) and body["errors"]
    code: str = body["errors"][0]["code"]
    assert body["errors"][0]["message"]
    return code
