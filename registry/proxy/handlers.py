"""The /v2/ handlers of a registry with mirrors: mirrored names are answered from the cache or the
upstream, every other name by the local handlers they wrap. The dispatcher has authorized the
request by the name the client asked for before any of this runs, so access rules apply to
mirrored repositories exactly as to local ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from oci.digest import Digest
from oci.reference import valid_tag
from registry import paths
from registry.errors import ErrorCode, RegistryError
from registry.events import model
from registry.handlers.blobs import BlobHandlers
from registry.handlers.listing import ListingHandlers
from registry.handlers.manifests import ManifestHandlers
from registry.handlers.uploads import UploadHandlers
from registry.proxy.fill import Fill, Filler
from registry.proxy.manifests import STALE_WARNING, MirroredManifests
from registry.proxy.metrics import ProxyMetrics
from registry.proxy.routing import Routing, Target
from registry.proxy.upstream import Failure, UpstreamError
from registry.store import Store
from storage_backends import PathNotFound

log = logging.getLogger("dockyard.proxy")

Handler = Callable[[Request, str], Awaitable[Response]]


def client_error(exc: UpstreamError, what: str, detail: object) -> RegistryError:
    """An upstream's failure as the OCI error this registry's client should see."""
    if exc.failure is Failure.NOT_FOUND:
        code = ErrorCode.MANIFEST_UNKNOWN if what == "manifest" else ErrorCode.BLOB_UNKNOWN
        return RegistryError(code, detail=detail, message=f"{code.message}: {exc.message}")
    if exc.failure in (Failure.UNAUTHORIZED, Failure.DENIED):
        # The client's own credentials are not the problem (it was let in here); the mirror's for the
        # upstream are, so a 401 asking the client to log in would mislead.
        return RegistryError(ErrorCode.DENIED, detail=detail, message=exc.message)
    if exc.failure is Failure.RATE_LIMITED:
        headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
        return RegistryError(ErrorCode.TOOMANYREQUESTS, detail=detail, headers=headers, message=exc.message)
    return RegistryError(ErrorCode.UNAVAILABLE, detail=detail, message=f"{exc.message}, and nothing is cached")


@dataclass
class Mirror:
    """What the wrapping handlers share: the routing, the store, the fills and the counters."""

    routing: Routing
    store: Store
    filler: Filler
    manifests: MirroredManifests
    metrics: ProxyMetrics

    async def target(self, request: Request, name: str) -> Target | None:
        found = self.routing.prefixed(name)
        if found is not None:
            return found
        found = self.routing.unprefixed(name, request.query_params.get("ns"))
        if found is None or await self.store.repository_exists(name):
            return None  # the registry's own repositories win over a default upstream
        return found

    def refuse_push(self, name: str) -> None:
        if self.routing.refuses_push(name):
            raise RegistryError(
                ErrorCode.UNSUPPORTED,
                detail={"name": name},
                message="this repository is a read-only mirror of an upstream registry: push to the upstream instead",
            )

    async def aclose(self) -> None:
        await self.filler.aclose()
        await self.routing.aclose()


def _manifest_response(method: str, digest: str, media_type: str, body: bytes, size: int | None) -> Response:
    headers = {
        "Docker-Content-Digest": digest,
        "ETag": f'"{digest}"',
        "Content-Length": str(len(body) if size is None else size),
    }
    return Response(b"" if method == "HEAD" else body, headers=headers, media_type=media_type)


@dataclass
class MirrorManifestHandlers:
    mirror: Mirror
    local: ManifestHandlers

    async def get_manifest(self, request: Request, name: str) -> Response:
        target = await self.mirror.target(request, name)
        if target is None:
            return await self.local.get_manifest(request, name)
        reference = request.path_params["reference"]
        if ":" in reference:
            Digest.parse(reference)
        elif not valid_tag(reference):
            # As for a local name: no such tag can exist, here or upstream.
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, detail={"reference": reference})
        try:
            answer = await self.mirror.manifests.get(target, target.local, reference, request.method == "HEAD")
        except UpstreamError as exc:
            raise client_error(exc, "manifest", {"name": name, "reference": reference}) from None
        tags = [] if ":" in reference else [reference]
        if answer.manifest is None:
            head = answer.head
            assert head is not None and head.digest is not None
            await self._pulled_head(request, name, head.media_type, head.digest, head.size, tags)
            return _manifest_response("HEAD", head.digest, head.media_type, b"", head.size)
        manifest = answer.manifest
        events = self.local.events
        if events is not None:  # a pull, as distribution's proxy reports it: cached or not
            digest = str(manifest.digest)
            await events.manifest(request, "pull", name, manifest.media_type, digest, manifest.body, tags)
        response = _manifest_response(request.method, str(manifest.digest), manifest.media_type, manifest.body, None)
        if answer.stale:
            response.headers["Warning"] = STALE_WARNING
        return response

    async def _pulled_head(
        self, request: Request, name: str, media_type: str, digest: str, size: int | None, tags: list[str]
    ) -> None:
        """The pull event of a HEAD the upstream's own HEAD answered: without the body, so without
        its references."""
        events = self.local.events
        if events is None or not events.active:
            return
        url = events.url(request, f"/v2/{name}/manifests/{digest}")
        for tag in tags or [""]:
            target = model.manifest_target(name, media_type, digest, b"", url, tag)
            target["size"] = target["length"] = size
            await events.emit(request, ("pull", target))

    async def put_manifest(self, request: Request, name: str) -> Response:
        self.mirror.refuse_push(name)
        return await self.local.put_manifest(request, name)

    async def delete_manifest(self, request: Request, name: str) -> Response:
        return await self.local.delete_manifest(request, name)


@dataclass
class MirrorUploadHandlers:
    mirror: Mirror
    local: UploadHandlers

    async def start_upload(self, request: Request, name: str) -> Response:
        self.mirror.refuse_push(name)
        return await self.local.start_upload(request, name)

    async def get_upload(self, request: Request, name: str) -> Response:
        self.mirror.refuse_push(name)
        return await self.local.get_upload(request, name)

    async def patch_upload(self, request: Request, name: str) -> Response:
        self.mirror.refuse_push(name)
        return await self.local.patch_upload(request, name)

    async def put_upload(self, request: Request, name: str) -> Response:
        self.mirror.refuse_push(name)
        return await self.local.put_upload(request, name)

    async def cancel_upload(self, request: Request, name: str) -> Response:
        self.mirror.refuse_push(name)
        return await self.local.cancel_upload(request, name)


class _FillResponse(Response):
    """A blob streamed from a fill as it arrives. A fill that fails (bytes not matching the digest,
    an upstream that broke off) leaves the response unfinished: the server closes the connection,
    and the client, short of its Content-Length, discards what it got."""

    def __init__(self, fill: Fill, headers: dict[str, str], metrics: ProxyMetrics) -> None:
        super().__init__(None, 200, headers, "application/octet-stream")
        self.fill = fill
        self.metrics = metrics
        self.chunks = fill.reader()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.ensure_future(self._stream(send))
        watching = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({streaming, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            if not streaming.done():
                streaming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streaming
            await self.chunks.aclose()  # type: ignore[attr-defined]

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        served = self.metrics.served_bytes.labels(self.fill.label)
        try:
            async for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                served.inc(len(chunk))
        except UpstreamError as exc:
            log.warning("cut short a download of %s: %s", self.fill.digest, exc.message)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _blob_headers(digest: Digest, size: int) -> dict[str, str]:
    return {
        "Docker-Content-Digest": str(digest),
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
        "Content-Length": str(size),
    }


@dataclass
class MirrorBlobHandlers:
    mirror: Mirror
    local: BlobHandlers

    async def get_blob(self, request: Request, name: str) -> Response:
        target = await self.mirror.target(request, name)
        if target is None:
            return await self.local.get_blob(request, name)
        digest = Digest.parse(request.path_params["digest"])
        metrics = self.mirror.metrics
        label = target.upstream.label
        if await self._cached(target, digest):
            metrics.hits.labels(label, "blob").inc()
            response = await self.local.get_blob(request, target.local, shown_as=name)
            length = response.headers.get("content-length")
            if request.method == "GET" and length:
                metrics.served_bytes.labels(label).inc(int(length))
            return response
        metrics.misses.labels(label, "blob").inc()
        detail = {"digest": str(digest)}
        if request.method == "HEAD":
            try:
                head = await target.upstream.head(target.remote, f"blobs/{digest}", within=target.upstream.timeout)
            except UpstreamError as exc:
                metrics.upstream_errors.labels(label, exc.failure.value).inc()
                raise client_error(exc, "blob", detail) from None
            if head.size is None:
                raise client_error(
                    UpstreamError(Failure.UNAVAILABLE, f"upstream {label} gave no blob size"), "blob", detail
                )
            await self._pulled(request, name, digest, head.size)
            return Response(status_code=200, headers=_blob_headers(digest, head.size))
        fill = self.mirror.filler.fill(target, target.local, digest)
        await fill.opened.wait()
        try:
            if fill.error is not None:
                raise fill.error
            if fill.size is None or request.headers.get("range"):
                # A range, or a length the upstream did not announce: serve from the cache once filled.
                await fill.wait_done()
                return await self.local.get_blob(request, target.local, shown_as=name)
        except UpstreamError as exc:  # counted by the fill
            raise client_error(exc, "blob", detail) from None
        await self._pulled(request, name, digest, fill.size)
        return _FillResponse(fill, _blob_headers(digest, fill.size), metrics)

    async def _pulled(self, request: Request, name: str, digest: Digest, size: int) -> None:
        """A blob served from the upstream as it arrives: a pull like any other (the bytes it
        leaves in the cache are no push)."""
        if self.local.events is not None:
            await self.local.events.blob(request, "pull", name, str(digest), size)

    async def _cached(self, target: Target, digest: Digest) -> bool:
        """Whether the cache can serve the blob for this repository, linking bytes that another
        repository brought in once the upstream confirms this repository has them too."""
        store = self.mirror.store
        try:
            await store.stat_blob(target.local, digest)
            return True
        except RegistryError:
            pass
        try:
            await store.backend.stat(paths.blob_data(digest))
        except PathNotFound:
            return False
        upstream = target.upstream
        try:
            await upstream.head(target.remote, f"blobs/{digest}", within=upstream.timeout)
        except UpstreamError as exc:
            if exc.failure in (Failure.NOT_FOUND, Failure.UNAUTHORIZED, Failure.DENIED):
                return False
            # The bytes are verified by their digest; an upstream that cannot say is no reason to refuse them.
        await store.backend.put(paths.layer_link(target.local, digest), str(digest).encode())
        return True

    async def delete_blob(self, request: Request, name: str) -> Response:
        return await self.local.delete_blob(request, name)


@dataclass
class MirrorListingHandlers:
    """Tag lists and referrers of a mirrored repository come from the upstream while it answers,
    from the cache when it does not."""

    mirror: Mirror
    local: ListingHandlers

    async def catalog(self, request: Request, name: str) -> Response:
        return await self.local.catalog(request, name)

    async def list_tags(self, request: Request, name: str) -> Response:
        return await self._forwarded(request, name, "tags/list", self.local.list_tags)

    async def list_referrers(self, request: Request, name: str) -> Response:
        Digest.parse(request.path_params["digest"])
        path = f"referrers/{request.path_params['digest']}"
        return await self._forwarded(request, name, path, self.local.list_referrers)

    async def _forwarded(self, request: Request, name: str, path: str, local: Handler) -> Response:
        target = await self.mirror.target(request, name)
        if target is None:
            return await local(request, name)
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "ns"])
        upstream = target.upstream
        try:
            reply = await upstream.open(
                "GET", target.remote, f"{path}?{query}" if query else path, within=upstream.timeout
            )
            try:
                body = await reply.aread()
            finally:
                await reply.aclose()
        except (UpstreamError, httpx.HTTPError) as exc:
            failure = exc if isinstance(exc, UpstreamError) else UpstreamError(Failure.UNAVAILABLE, str(exc))
            self.mirror.metrics.upstream_errors.labels(upstream.label, failure.failure.value).inc()
            if failure.failure is Failure.NOT_FOUND:
                raise RegistryError(ErrorCode.NAME_UNKNOWN, detail={"name": name}) from None
            try:
                cached = await local(request, target.local)
            except RegistryError:
                raise client_error(failure, "manifest", {"name": name}) from None
            cached.headers["Warning"] = STALE_WARNING
            return cached
        headers: dict[str, str] = {}
        if "oci-filters-applied" in reply.headers:
            headers["OCI-Filters-Applied"] = reply.headers["oci-filters-applied"]
        if "link" in reply.headers:  # the next page, under this registry's name for the repository
            headers["Link"] = reply.headers["link"].replace(f"/v2/{target.remote}/", f"/v2/{name}/")
        media_type = reply.headers.get("content-type", "application/json")
        if path == "tags/list":
            try:
                listing = orjson.loads(body)
                body = orjson.dumps({"name": name, "tags": listing.get("tags") or []})
            except (orjson.JSONDecodeError, AttributeError):
                raise RegistryError(
                    ErrorCode.UNAVAILABLE, message=f"upstream {upstream.label} sent a bad tag list"
                ) from None
        return Response(body, headers=headers, media_type=media_type)
