"""Mirrored manifests: by digest cached for good, by tag for the upstream's `ttl`, then revalidated
with a `HEAD` (which Docker Hub does not count as a pull). When the upstream cannot answer, a
cached tag is served stale (with a `Warning` header and a log line) rather than failing the pull.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from oci.client import MAX_MANIFEST_SIZE, manifest_media_type
from oci.digest import Digest
from oci.manifests import ManifestError, parse_manifest
from registry import paths
from registry.errors import RegistryError
from registry.proxy.evict import PullClock
from registry.proxy.metrics import ProxyMetrics
from registry.proxy.routing import Target
from registry.proxy.upstream import Failure, Head, UpstreamError
from registry.store import Manifest, Store
from storage_backends import PathNotFound

log = logging.getLogger("dockyard.proxy")

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
STALE_WARNING = '110 - "Response is Stale"'


@dataclass(frozen=True, slots=True)
class Answer:
    manifest: Manifest | None  # None: a HEAD answered from the upstream's own HEAD
    head: Head | None = None
    stale: bool = False


class MirroredManifests:
    def __init__(self, store: Store, metrics: ProxyMetrics) -> None:
        self.store = store
        self.metrics = metrics
        self.clock = PullClock(store.backend)
        # (local name, tag) -> when the upstream last confirmed it. Per process: a worker that has
        # not seen a tag yet revalidates it once, which costs one HEAD.
        self._validated: dict[tuple[str, str], float] = {}

    async def get(self, target: Target, name: str, reference: str, head_only: bool) -> Answer:
        answer = await self._answer(target, name, reference, head_only)
        if answer.manifest is not None:
            await self.clock.touch(name)
        return answer

    async def _answer(self, target: Target, name: str, reference: str, head_only: bool) -> Answer:
        cached = await self._cached(name, reference)
        upstream = target.upstream
        label = upstream.label
        if ":" in reference:
            if cached is not None:
                self.metrics.hits.labels(label, "manifest").inc()
                return Answer(cached)
            self.metrics.misses.labels(label, "manifest").inc()
            return Answer(await self._fetch(target, name, reference, None))
        key = (name, reference)
        validated = self._validated.get(key)
        if cached is not None and validated is not None and time.monotonic() - validated < upstream.ttl:
            self.metrics.hits.labels(label, "manifest").inc()
            return Answer(cached)
        try:
            if cached is not None or head_only:
                found = await upstream.head(
                    target.remote, f"manifests/{reference}", {"Accept": ACCEPT}, within=upstream.timeout
                )
                if cached is not None and found.digest == str(cached.digest):
                    self._validated[key] = time.monotonic()
                    self.metrics.hits.labels(label, "manifest").inc()
                    return Answer(cached)
                if head_only and found.digest:
                    # A HEAD on a miss needs no body: the client's GET by digest will fetch it.
                    self.metrics.misses.labels(label, "manifest").inc()
                    return Answer(None, found)
            self.metrics.misses.labels(label, "manifest").inc()
            manifest = await self._fetch(target, name, reference, reference)
            self._validated[key] = time.monotonic()
            return Answer(manifest)
        except UpstreamError as exc:
            if cached is None or exc.failure in (Failure.NOT_FOUND, Failure.UNAUTHORIZED, Failure.DENIED):
                raise
            self.metrics.stale.labels(label).inc()
            log.warning("serving %s:%s stale from the cache: %s", name, reference, exc.message)
            return Answer(cached, stale=True)

    async def _cached(self, name: str, reference: str) -> Manifest | None:
        try:
            return await self.store.get_manifest(name, reference)
        except (RegistryError, PathNotFound):
            return None

    async def _fetch(self, target: Target, name: str, reference: str, tag: str | None) -> Manifest:
        upstream = target.upstream
        response = await upstream.open(
            "GET", target.remote, f"manifests/{reference}", {"Accept": ACCEPT}, within=upstream.timeout
        )
        try:
            parts: list[bytes] = []
            total = 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > MAX_MANIFEST_SIZE:
                    raise UpstreamError(Failure.CORRUPT, f"upstream {upstream.label} sent a manifest too large")
                parts.append(chunk)
        except UpstreamError:
            self.metrics.upstream_errors.labels(upstream.label, Failure.CORRUPT.value).inc()
            raise
        except Exception:
            self.metrics.upstream_errors.labels(upstream.label, Failure.UNAVAILABLE.value).inc()
            raise UpstreamError(Failure.UNAVAILABLE, f"upstream {upstream.label} broke off a manifest") from None
        finally:
            await response.aclose()
        body = b"".join(parts)
        self.metrics.upstream_bytes.labels(upstream.label).inc(len(body))
        announced = reference if ":" in reference else response.headers.get("docker-content-digest")
        digest = self._verified(body, announced, upstream.label)
        try:
            media_type = manifest_media_type(body, response.headers.get("content-type"))
        except Exception:
            raise UpstreamError(
                Failure.CORRUPT, f"upstream {upstream.label} sent a manifest that is not JSON"
            ) from None
        await self._store(name, digest, body, media_type, tag)
        return Manifest(digest, media_type, body)

    def _verified(self, body: bytes, announced: str | None, label: str) -> Digest:
        try:
            want = Digest.parse(announced) if announced else None
        except Exception:
            want = None
        got = Digest.of(body, want.algorithm if want is not None else "sha256")
        if want is not None and got != want:
            self.metrics.upstream_errors.labels(label, Failure.CORRUPT.value).inc()
            log.warning("upstream %s sent a manifest that does not match %s; not stored", label, want)
            raise UpstreamError(Failure.CORRUPT, f"upstream {label} sent a manifest that does not match {want}")
        return got

    async def _store(self, name: str, digest: Digest, body: bytes, media_type: str, tag: str | None) -> None:
        """Cache a verified manifest: its referenced blobs come later, on demand, so the store's
        reference checks for pushes do not apply."""
        backend = self.store.backend
        key = paths.blob_data(digest)
        try:
            await backend.stat(key)
        except PathNotFound:
            await backend.put(key, body)
        await backend.put(paths.manifest_revision_link(name, digest), str(digest).encode())
        try:
            subject = parse_manifest(body, media_type).subject
        except ManifestError:
            subject = None
        if subject is not None:
            await backend.put(paths.referrer_link(name, subject, digest), str(digest).encode())
        if tag is not None:
            await backend.put(paths.tag_index_link(name, tag, digest), str(digest).encode())
            await backend.put(paths.tag_current_link(name, tag), str(digest).encode())
