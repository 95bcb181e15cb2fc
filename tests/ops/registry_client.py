"""A small registry client over httpx for the ops tests: push blobs, images, indexes, referrers."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


async def push_blob(client: httpx.AsyncClient, name: str, data: bytes) -> str:
    digest = digest_of(data)
    r = await client.post(f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202, r.text
    r = await client.put(r.headers["location"], params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    return digest


async def put_manifest(client: httpx.AsyncClient, name: str, reference: str, body: bytes, media_type: str) -> str:
    r = await client.put(f"/v2/{name}/manifests/{reference}", content=body, headers={"Content-Type": media_type})
    assert r.status_code == 201, r.text
    return digest_of(body)


def image_manifest(config: bytes, layers: list[bytes], subject: bytes | None = None, **extra: Any) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, layer) for layer in layers],
        **extra,
    }
    if subject is not None:
        doc["subject"] = descriptor(OCI_MANIFEST, subject)
    return json.dumps(doc).encode()


async def push_image(
    client: httpx.AsyncClient, name: str, reference: str, config: bytes, layers: list[bytes]
) -> tuple[str, bytes]:
    """Push config and layers, then the manifest by tag or digest; returns (digest, body)."""
    for blob in (config, *layers):
        await push_blob(client, name, blob)
    body = image_manifest(config, layers)
    ref = digest_of(body) if reference == "@digest" else reference
    return await put_manifest(client, name, ref, body, OCI_MANIFEST), body


async def push_referrer(
    client: httpx.AsyncClient, name: str, subject: bytes, payload: bytes, artifact_type: str
) -> tuple[str, bytes]:
    """An artifact (signature, SBOM) whose subject is the manifest `subject`, pushed by digest."""
    empty = b"{}"
    await push_blob(client, name, empty)
    await push_blob(client, name, payload)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": descriptor(OCI_EMPTY, empty),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": descriptor(OCI_MANIFEST, subject),
    }
    body = json.dumps(doc).encode()
    return await put_manifest(client, name, digest_of(body), body, OCI_MANIFEST), body


async def push_index(client: httpx.AsyncClient, name: str, tag: str, children: list[bytes]) -> tuple[str, bytes]:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            descriptor(OCI_MANIFEST, child, platform={"architecture": arch, "os": "linux"})
            for child, arch in zip(children, ["amd64", "arm64", "s390x", "ppc64le"], strict=False)
        ],
    }
    body = json.dumps(doc).encode()
    return await put_manifest(client, name, tag, body, OCI_INDEX), body


async def pull(client: httpx.AsyncClient, name: str, reference: str) -> None:
    """Fetch a manifest and every blob it (or its children) references; assert each is served."""
    r = await client.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})
    assert r.status_code == 200, f"{name}:{reference}: {r.status_code} {r.text}"
    doc = r.json()
    for child in doc.get("manifests", []):
        await pull(client, name, child["digest"])
    for blob in [doc["config"], *doc.get("layers", [])] if "config" in doc else []:
        got = await client.get(f"/v2/{name}/blobs/{blob['digest']}")
        assert got.status_code == 200, f"{name} blob {blob['digest']}: {got.status_code} {got.text}"
        assert digest_of(got.content) == blob["digest"]
