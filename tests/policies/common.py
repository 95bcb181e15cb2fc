"""Helpers of the governance tests: blobs and images pushed over HTTP, and the `dockyard` command."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from tests.servers import ROOT

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = b"{}"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(client: httpx.Client, name: str, data: bytes, digest: str | None = None) -> httpx.Response:
    """A monolithic upload (POST ?digest=), claiming `digest` (the data's own by default)."""
    return client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest or digest_of(data)}, content=data)


@dataclass(frozen=True)
class Pushed:
    response: httpx.Response
    manifest: bytes

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


def manifest_for(payload: bytes, subject: bytes | None = None, artifact: str | None = None) -> bytes:
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(CONFIG), "size": 2},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(payload), "size": len(payload)}
        ],
    }
    if subject is not None:
        manifest["subject"] = {"mediaType": OCI_MANIFEST, "digest": digest_of(subject), "size": len(subject)}
    if artifact is not None:
        manifest["artifactType"] = artifact
    return json.dumps(manifest).encode()


def put_manifest(
    client: httpx.Client, name: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST
) -> httpx.Response:
    return client.put(f"/v2/{name}/manifests/{reference}", content=body, headers={"Content-Type": media_type})


def image(
    client: httpx.Client, name: str, tag: str, payload: bytes, subject: bytes | None = None, artifact: str | None = None
) -> Pushed:
    """Config and layer uploaded, then the manifest put under `tag` (or a digest reference when tag is "")."""
    for data in (CONFIG, payload):
        assert blob(client, name, data).status_code == 201
    body = manifest_for(payload, subject, artifact)
    return Pushed(put_manifest(client, name, tag or digest_of(body), body), body)


def index_of(*manifests: bytes) -> bytes:
    entries = [{"mediaType": OCI_MANIFEST, "digest": digest_of(m), "size": len(m)} for m in manifests]
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()


def dockyard(*args: str, env: Mapping[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, f"dockyard {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result
