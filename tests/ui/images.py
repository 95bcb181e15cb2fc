"""Images for the UI tests, pushed through the API of a real server: an image with a full config
and history, a two-platform index, a signature-like referrer, and tags sharing layers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SIGNATURE_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SBOM_TYPE = "application/spdx+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


@dataclass(frozen=True)
class Pushed:
    digest: str
    body: bytes
    config: bytes
    layers: tuple[bytes, ...]


def push_blob(client: httpx.Client, name: str, data: bytes) -> str:
    digest = digest_of(data)
    r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    return digest


def put_manifest(client: httpx.Client, name: str, reference: str, body: bytes, media_type: str) -> str:
    r = client.put(f"/v2/{name}/manifests/{reference}", content=body, headers={"Content-Type": media_type})
    assert r.status_code == 201, r.text
    return r.headers["docker-content-digest"]


def image_config(arch: str = "amd64", created: str = "2026-11-30T10:20:30Z") -> bytes:
    doc = {
        "created": created,
        "architecture": arch,
        "os": "linux",
        "config": {
            "Entrypoint": ["/bin/server"],
            "Cmd": ["--port", "8080"],
            "Env": ["PATH=/usr/bin:/bin", "MODE=production"],
            "WorkingDir": "/srv",
            "User": "app",
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.opencontainers.image.source": "https://example.invalid/app"},
        },
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [
            {"created": "2026-11-30T10:00:00Z", "created_by": "ADD rootfs.tar /"},
            {"created": "2026-11-30T10:10:00Z", "created_by": "ENV MODE=production", "empty_layer": True},
            {"created": "2026-11-30T10:20:00Z", "created_by": "COPY server /bin/server"},
        ],
    }
    return json.dumps(doc).encode()


def push_image(
    client: httpx.Client, name: str, tag: str | None, layers: tuple[bytes, ...], arch: str = "amd64"
) -> Pushed:
    config = image_config(arch)
    push_blob(client, name, config)
    for layer in layers:
        push_blob(client, name, layer)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer) for layer in layers],
        }
    ).encode()
    digest = put_manifest(client, name, tag or digest_of(body), body, OCI_MANIFEST)
    return Pushed(digest, body, config, layers)


def push_index(client: httpx.Client, name: str, tag: str, children: list[tuple[Pushed, str]]) -> Pushed:
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                descriptor(OCI_MANIFEST, child.body, platform={"os": "linux", "architecture": arch})
                for child, arch in children
            ],
        }
    ).encode()
    return Pushed(put_manifest(client, name, tag, body, OCI_INDEX), body, b"", ())


def push_referrer(client: httpx.Client, name: str, subject: Pushed, artifact_type: str, payload: bytes) -> str:
    empty = b"{}"
    push_blob(client, name, empty)
    push_blob(client, name, payload)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": descriptor(OCI_EMPTY, empty),
            "layers": [descriptor("application/octet-stream", payload)],
            "subject": descriptor(OCI_MANIFEST, subject.body),
        }
    ).encode()
    return put_manifest(client, name, digest_of(body), body, OCI_MANIFEST)


@dataclass(frozen=True)
class Fixture:
    app: Pushed  # team/app:1.0 and :latest (same manifest)
    app_old: Pushed  # team/app:0.9, shares the base layer with 1.0
    multi: Pushed  # team/multi:latest, an index of amd64 and arm64
    signature: str
    sbom: str


BASE_LAYER = b"base layer bytes " * 64
APP_LAYER = b"application layer"


def populate(client: httpx.Client) -> Fixture:
    app = push_image(client, "team/app", "1.0", (BASE_LAYER, APP_LAYER))
    put_manifest(client, "team/app", "latest", app.body, OCI_MANIFEST)
    old = push_image(client, "team/app", "0.9", (BASE_LAYER, b"older application layer"))
    amd = push_image(client, "team/multi", None, (b"amd64 layer",), "amd64")
    arm = push_image(client, "team/multi", None, (b"arm64 layer",), "arm64")
    multi = push_index(client, "team/multi", "latest", [(amd, "amd64"), (arm, "arm64")])
    signature = push_referrer(client, "team/app", app, SIGNATURE_TYPE, b"signature payload")
    sbom = push_referrer(client, "team/app", app, SBOM_TYPE, b'{"spdxVersion": "SPDX-2.3"}')
    return Fixture(app, old, multi, signature, sbom)
