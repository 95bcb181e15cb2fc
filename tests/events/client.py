"""Registry operations over plain HTTP, as a client makes them: blob uploads, manifests, mounts."""

from __future__ import annotations

import hashlib
import json

import httpx

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(client: httpx.Client, name: str, data: bytes) -> str:
    """A POST then a PUT with the bytes (docker's way for small blobs)."""
    digest = digest_of(data)
    started = client.post(f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    joiner = "&" if "?" in location else "?"
    done = client.put(f"{location}{joiner}digest={digest}", content=data)
    assert done.status_code == 201, done.text
    return digest


def manifest(layers: list[bytes]) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest_of(CONFIG),
            "size": len(CONFIG),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(layer), "size": len(layer)}
            for layer in layers
        ],
    }
    return json.dumps(document).encode()


def push_image(client: httpx.Client, name: str, tag: str, layers: list[bytes]) -> str:
    """Config, layers, then the manifest under `tag`; returns the manifest's digest."""
    push_blob(client, name, CONFIG)
    for layer in layers:
        push_blob(client, name, layer)
    body = manifest(layers)
    response = client.put(f"/v2/{name}/manifests/{tag}", content=body, headers={"Content-Type": MANIFEST_TYPE})
    assert response.status_code == 201, response.text
    return digest_of(body)
