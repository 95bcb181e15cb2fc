"""Blob uploads: monolithic, chunked, streamed, resumable, and cross-repository mounts."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from oci.digest import ALGORITHMS, Digest
from oci.reference import valid_name
from registry.errors import ErrorCode, RegistryError
from registry.events.notifier import Notifier
from registry.handlers.common import body_stream, content_length, content_range
from registry.store import Store


def _upload_headers(name: str, upload_id: str, size: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
        "Content-Length": "0",
    }


def _created(name: str, digest: str) -> Response:
    headers = {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest, "Content-Length": "0"}
    return Response(status_code=201, headers=headers)


@dataclass
class UploadHandlers:
    store: Store
    events: Notifier | None = None

    async def _pushed(self, request: Request, name: str, digest: Digest, source: str = "") -> None:
        if self.events is not None and self.events.active:
            size = await self.store.blob_size(digest)
            await self.events.blob(request, "mount" if source else "push", name, str(digest), size, source)

    async def start_upload(self, request: Request, name: str) -> Response:
        """end-4a/4b/4c/11: POST /v2/<name>/blobs/uploads/ (?digest=, ?digest-algorithm=, ?mount=&from=)."""
        params = request.query_params
        mount, source = params.get("mount"), params.get("from")
        if mount and source:
            digest = Digest.parse(mount)
            grant = getattr(request.state, "grant", None)
            allowed = grant is None or grant.allows("repository", source, "pull")
            if valid_name(source) and allowed and await self.store.mount_blob(name, source, digest):
                await self._pushed(request, name, digest, source)
                return _created(name, str(digest))
        algorithm = params.get("digest-algorithm")
        if algorithm is not None and algorithm not in ALGORITHMS:
            raise RegistryError(ErrorCode.DIGEST_INVALID, detail=f"unsupported digest algorithm {algorithm!r}")
        if "digest" in params:
            length = content_length(request)
            digest = await self.store.uploads.put_blob(name, body_stream(request), params.get("digest"), length)
            await self._pushed(request, name, digest)
            return _created(name, str(digest))
        upload_id = await self.store.uploads.start_upload(name)
        return Response(status_code=202, headers=_upload_headers(name, upload_id, 0))

    async def get_upload(self, request: Request, name: str) -> Response:
        """end-13: GET /v2/<name>/blobs/uploads/<reference>."""
        upload_id = request.path_params["upload_id"]
        size = await self.store.uploads.upload_size(name, upload_id)
        return Response(status_code=204, headers=_upload_headers(name, upload_id, size))

    async def patch_upload(self, request: Request, name: str) -> Response:
        """end-5: PATCH <location>, with Content-Range (chunked) or without (streamed)."""
        upload_id = request.path_params["upload_id"]
        chunk_range = content_range(request)
        length = content_length(request)
        start = None
        if chunk_range is not None:
            start = chunk_range[0]
            expected = chunk_range[1] - chunk_range[0] + 1
            if length is not None and length != expected:
                size = await self.store.uploads.upload_size(name, upload_id)
                raise RegistryError(
                    ErrorCode.BLOB_UPLOAD_INVALID,
                    detail="Content-Range does not match Content-Length",
                    headers={"Range": f"0-{max(size - 1, 0)}"},
                    status=416,
                )
            length = expected
        size = await self.store.uploads.append_upload(name, upload_id, body_stream(request), start, length)
        return Response(status_code=202, headers=_upload_headers(name, upload_id, size))

    async def put_upload(self, request: Request, name: str) -> Response:
        """end-6: PUT <location>?digest=<digest>, optionally with the last chunk."""
        upload_id = request.path_params["upload_id"]
        length = content_length(request)
        chunk_range = content_range(request)
        has_body = (length is not None and length > 0) or "chunked" in request.headers.get("transfer-encoding", "")
        start = chunk_range[0] if chunk_range else None
        chunks = body_stream(request) if has_body else None
        digest = await self.store.uploads.complete_upload(
            name, upload_id, request.query_params.get("digest"), chunks, start, length if has_body else None
        )
        await self._pushed(request, name, digest)
        return _created(name, str(digest))

    async def cancel_upload(self, request: Request, name: str) -> Response:
        """end-14: DELETE <location>."""
        await self.store.uploads.cancel_upload(name, request.path_params["upload_id"])
        return Response(status_code=204)
