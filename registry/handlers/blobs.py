"""Blob reads and deletes."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from oci.digest import Digest
from registry.events.notifier import Notifier
from registry.handlers.common import byte_range
from registry.store import Store
from registry.zerocopy import PATHSEND


class _PathSendResponse(Response):
    """A whole file sent by the ASGI server (the `http.response.pathsend` extension)."""

    def __init__(self, path: str, headers: dict[str, str], media_type: str) -> None:
        super().__init__(None, 200, headers, media_type)
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": PATHSEND, "path": self.path})


@dataclass
class BlobHandlers:
    store: Store
    redirect: bool
    events: Notifier | None = None

    async def get_blob(self, request: Request, name: str, shown_as: str = "") -> Response:
        """end-2: GET/HEAD /v2/<name>/blobs/<digest>. `shown_as`: the name the client asked for,
        when `name` is where a pull-through cache keeps it (registry/proxy/handlers.py)."""
        digest = Digest.parse(request.path_params["digest"])
        info = await self.store.stat_blob(name, digest)
        if self.events is not None:
            await self.events.blob(request, "pull", shown_as or name, str(digest), info.size)
        headers = {
            "Docker-Content-Digest": str(digest),
            "ETag": f'"{digest}"',
            "Accept-Ranges": "bytes",
            "Cache-Control": "max-age=31536000",
        }
        if self.redirect and request.method == "GET":
            url = await self.store.blob_redirect(digest)
            if url is not None:
                return RedirectResponse(url, status_code=307, headers=headers)
        selected = byte_range(request.headers.get("range"), info.size)
        if selected is None:
            start, length, status = 0, info.size, 200
        else:
            start, length, status = selected[0], selected[1] - selected[0] + 1, 206
            headers["Content-Range"] = f"bytes {selected[0]}-{selected[1]}/{info.size}"
        headers["Content-Length"] = str(length)
        media_type = "application/octet-stream"
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=media_type)
        if selected is None and PATHSEND in request.scope.get("extensions", {}):
            path = self.store.blob_path(digest)
            if path is not None:  # the server sends the file itself, zero-copy (registry/zerocopy.py, granian)
                return _PathSendResponse(path, headers, media_type)
        return StreamingResponse(
            self.store.read_blob(digest, start, length), status_code=status, headers=headers, media_type=media_type
        )

    async def delete_blob(self, request: Request, name: str) -> Response:
        """end-10: DELETE /v2/<name>/blobs/<digest>."""
        digest = Digest.parse(request.path_params["digest"])
        await self.store.delete_blob(name, digest)
        if self.events is not None:
            await self.events.deleted(request, name, digest=str(digest))
        return Response(status_code=202, headers={"Content-Length": "0"})
