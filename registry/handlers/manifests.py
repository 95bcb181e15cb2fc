"""Manifest reads, pushes and deletes."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from oci.manifests import MAX_MANIFEST_SIZE
from registry.events.notifier import Notifier
from registry.handlers.common import read_limited
from registry.store import Store


@dataclass
class ManifestHandlers:
    store: Store
    events: Notifier | None = None

    async def get_manifest(self, request: Request, name: str) -> Response:
        """end-3: GET/HEAD /v2/<name>/manifests/<reference>."""
        reference = request.path_params["reference"]
        # A HEAD by tag counts as a pull too: containerd resolves a tag so, then GETs by digest.
        manifest = await self.store.get_manifest(name, reference, pulled=True)
        headers = {
            "Docker-Content-Digest": str(manifest.digest),
            "ETag": f'"{manifest.digest}"',
            "Content-Length": str(len(manifest.body)),
        }
        if self.events is not None:
            tags = [] if ":" in reference else [reference]
            digest = str(manifest.digest)
            await self.events.manifest(request, "pull", name, manifest.media_type, digest, manifest.body, tags)
        body = b"" if request.method == "HEAD" else manifest.body
        return Response(body, headers=headers, media_type=manifest.media_type)

    async def put_manifest(self, request: Request, name: str) -> Response:
        """end-7a/7b: PUT /v2/<name>/manifests/<reference>[?tag=...]."""
        reference = request.path_params["reference"]
        body = await read_limited(request, MAX_MANIFEST_SIZE)
        tags = request.query_params.getlist("tag")
        result = await self.store.put_manifest(name, reference, body, request.headers.get("content-type"), tags)
        if self.events is not None:
            named = tags if ":" in reference else [reference, *tags]
            media_type = self.store.media_type(result.digest, body)
            await self.events.manifest(request, "push", name, media_type, str(result.digest), body, named)
        headers = {
            "Location": f"/v2/{name}/manifests/{result.digest}",
            "Docker-Content-Digest": str(result.digest),
            "Content-Length": "0",
        }
        if result.subject is not None:
            headers["OCI-Subject"] = str(result.subject)
        return Response(status_code=201, headers=headers)

    async def delete_manifest(self, request: Request, name: str) -> Response:
        """end-9: DELETE /v2/<name>/manifests/<reference>."""
        reference = request.path_params["reference"]
        tags = await self.store.delete_manifest(name, reference)
        if self.events is not None:
            await self.events.deleted(request, name, digest=reference if ":" in reference else "", tags=tags)
        return Response(status_code=202, headers={"Content-Length": "0"})
