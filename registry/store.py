"""OCI registry semantics over a storage backend: links, tags, uploads, digest checks.

Nothing here knows about HTTP. Every rule of the spec about what may be linked, what a manifest
must reference and when something becomes visible lives here; the key layout is `registry.paths`.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio

from oci.descriptor import must_exist
from oci.digest import Digest, InvalidDigest
from oci.manifests import ManifestError, ParsedManifest, media_type_of, parse_manifest
from oci.reference import valid_tag
from registry import paths
from registry.errors import ErrorCode, RegistryError
from registry.policies.immutable import ImmutableTags
from registry.policies.pulls import PullRecorder
from registry.uploads import Uploads
from registry.writes import WriteCounter
from storage_backends import LocalFiles, PathNotFound, StorageBackend, WalksTree, innermost

# A GC run marks a digest "pending" just before its last re-check, then deletes it and marks it
# "done" (or drops the mark if it keeps it). A mark older than this is from a run long over.
GC_DOOMED_TTL = 600.0
GC_PENDING = b"pending"
GC_DONE = b"done"
# A directory below repositories/ holding one of these is a repository.
_REPOSITORY_MARKS = ("_manifests", "_layers", "_uploads")
# Blob reads: 1 MiB blocks (fewer thread hops, faster streams) while few downloads run, smaller as more
# share this budget, so 64 concurrent downloads hold tens of MiB, not 128.
_READ_BLOCK_MAX = 1024 * 1024
_READ_BLOCK_MIN = 128 * 1024
_READ_BUDGET = 8 * 1024 * 1024
# How long a catalog walk's later pages may reuse the repository list its first page read.
_CATALOG_SNAPSHOT_SECONDS = 10.0
# Immutable manifest bodies are cached by digest; this bounds the cache's memory.
_MANIFEST_CACHE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    digest: Digest
    media_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class PutManifestResult:
    digest: Digest
    subject: Digest | None


@dataclass(frozen=True, slots=True)
class Referrer:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None
    annotations: dict[str, str] | None


class _ManifestCache:
    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[Digest, Manifest] = OrderedDict()
        self._bytes = 0
        self._limit = limit

    def get(self, digest: Digest) -> Manifest | None:
        item = self._items.get(digest)
        if item is not None:
            self._items.move_to_end(digest)
        return item

    def put(self, manifest: Manifest) -> None:
        if manifest.digest in self._items or len(manifest.body) > self._limit:
            return
        self._items[manifest.digest] = manifest
        self._bytes += len(manifest.body)
        while self._bytes > self._limit:
            _, old = self._items.popitem(last=False)
            self._bytes -= len(old.body)


def _parse_link(data: bytes) -> Digest:
    try:
        return Digest.parse(data.decode().strip())
    except (InvalidDigest, UnicodeDecodeError):
        raise PathNotFound("corrupt link") from None


class Store:
    def __init__(self, backend: StorageBackend, delete_enabled: bool = False) -> None:
        # Writes into repositories/ by this replica are counted here; a catalog snapshot holds only while
        # the count is unchanged.
        self.backend = self._counted = WriteCounter(backend, paths.REPOSITORIES)
        self.delete_enabled = delete_enabled
        self._manifests = _ManifestCache(_MANIFEST_CACHE_BYTES)
        core = innermost(backend)
        self._tree: WalksTree | None = core if isinstance(core, WalksTree) else None
        self._files: LocalFiles | None = core if isinstance(core, LocalFiles) else None
        self._catalog_snapshot: tuple[float, int, list[str]] | None = None
        self._downloads = 0
        self.uploads = Uploads(self.backend, self._link_blob)
        # Governance hooks (registry/policies), set by the app when configured.
        self.immutable: ImmutableTags | None = None
        self.pulls: PullRecorder | None = None

    # -- blobs -----------------------------------------------------------------------------

    async def _linked(self, name: str, digest: Digest) -> bool:
        for key in (paths.layer_link(name, digest), paths.manifest_revision_link(name, digest)):
            try:
                await self.backend.stat(key)
                return True
            except PathNotFound:
                continue
        return False

    async def stat_blob(self, name: str, digest: Digest) -> BlobInfo:
        """The blob's size, if the repository holds it (a link) and the bytes exist."""
        if not await self._linked(name, digest):
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, detail={"digest": str(digest)})
        try:
            info = await self.backend.stat(paths.blob_data(digest))
        except PathNotFound:
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, detail={"digest": str(digest)}) from None
        return BlobInfo(digest, info.size)

    async def read_blob(self, digest: Digest, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        # About three blocks per download are in memory (being sent, next, read ahead): big blocks
        # while few downloads run, smaller ones when many share the read budget.
        self._downloads += 1
        try:
            block = max(_READ_BLOCK_MIN, min(_READ_BLOCK_MAX, _READ_BUDGET // self._downloads))
            async for chunk in self.backend.reader(paths.blob_data(digest), offset, length, block):
                yield chunk
        finally:
            self._downloads -= 1

    async def blob_size(self, digest: Digest) -> int:
        """The size of a blob just stored (no link check: the caller has just linked it)."""
        return (await self.backend.stat(paths.blob_data(digest))).size

    def blob_path(self, digest: Digest) -> str | None:
        """The local file holding a blob, when the backend keeps blobs in local files."""
        return None if self._files is None else str(self._files.local_path(paths.blob_data(digest)))

    async def blob_redirect(self, digest: Digest) -> str | None:
        return await self.backend.redirect_url(paths.blob_data(digest))

    async def delete_blob(self, name: str, digest: Digest) -> None:
        self._require_delete()
        key = paths.layer_link(name, digest)
        try:
            await self.backend.stat(key)
        except PathNotFound:
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, detail={"digest": str(digest)}) from None
        await self.backend.delete(str(key).rsplit("/", 1)[0])

    async def _link_blob(self, name: str, digest: Digest) -> None:
        await self.backend.put(paths.layer_link(name, digest), str(digest).encode())

    async def mount_blob(self, name: str, source: str, digest: Digest) -> bool:
        """Link a blob that `source` holds into `name`; False when `source` does not hold it."""
        try:
            info = await self.stat_blob(source, digest)
        except RegistryError:
            return False
        quota = self.uploads.quota
        if quota is not None:
            await quota.check(name, info.size, digest)
        await self._link_blob(name, digest)
        if quota is not None:
            quota.stored(name)
        return True

    def _require_delete(self) -> None:
        if not self.delete_enabled:
            raise RegistryError(ErrorCode.UNSUPPORTED, message="deletes are disabled on this registry")

    # -- uploads ---------------------------------------------------------------------------

    async def purge_uploads(self, older_than: float) -> int:
        """Delete upload sessions started more than `older_than` seconds ago; returns how many."""
        cutoff = time.time() - older_than
        purged = 0
        for name in await self.repositories():
            purged += await self.uploads.purge(name, cutoff)
        return purged

    # -- manifests -------------------------------------------------------------------------

    async def resolve(self, name: str, reference: str) -> Digest:
        """The digest a tag or digest reference names in this repository."""
        if ":" in reference:
            return Digest.parse(reference)
        if not valid_tag(reference):
            # No such tag can exist, so no such manifest does (the conformance suite and distribution agree).
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, detail={"reference": reference})
        try:
            return _parse_link(await self.backend.get(paths.tag_current_link(name, reference)))
        except PathNotFound:
            raise await self._unknown_manifest(name, reference) from None

    async def _unknown_manifest(self, name: str, reference: str) -> RegistryError:
        if not await self.repository_exists(name):
            return RegistryError(ErrorCode.NAME_UNKNOWN, detail={"name": name})
        return RegistryError(ErrorCode.MANIFEST_UNKNOWN, detail={"reference": reference})

    async def get_manifest(self, name: str, reference: str, pulled: bool = False) -> Manifest:
        digest = await self.resolve(name, reference)
        if pulled and self.pulls is not None and ":" not in reference:
            self.pulls.record(name, reference)
        try:
            await self.backend.stat(paths.manifest_revision_link(name, digest))
        except PathNotFound:
            raise await self._unknown_manifest(name, reference) from None
        cached = self._manifests.get(digest)
        if cached is not None:
            return cached
        try:
            body = await self.backend.get(paths.blob_data(digest))
        except PathNotFound:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, detail={"reference": reference}) from None
        manifest = Manifest(digest, media_type_of(body), body)
        self._manifests.put(manifest)
        return manifest

    async def put_manifest(
        self, name: str, reference: str, body: bytes, content_type: str | None, tags: list[str] | None = None
    ) -> PutManifestResult:
        is_digest = ":" in reference
        all_tags = list(tags or [])
        if not is_digest:
            all_tags.insert(0, reference)
        for tag in all_tags:
            if not valid_tag(tag):
                raise RegistryError(ErrorCode.TAG_INVALID, detail={"tag": tag})
        algorithm = Digest.parse(reference).algorithm if is_digest else "sha256"
        digest = Digest.of(body, algorithm)
        if is_digest and str(digest) != reference:
            raise RegistryError(ErrorCode.DIGEST_INVALID, detail={"expected": reference, "actual": str(digest)})
        parsed = parse_manifest(body, content_type)
        await self._check_references(name, parsed)
        if self.immutable is not None:
            for tag in all_tags:
                self.immutable.check_move(name, tag, await self._current(name, tag), digest)

        blob_key = paths.blob_data(digest)
        try:
            await self.backend.stat(blob_key)
        except PathNotFound:
            await self.backend.put(blob_key, body)
        existed = await self._manifest_present(name, digest)
        await self.backend.put(paths.manifest_revision_link(name, digest), str(digest).encode())
        if parsed.subject is not None:
            await self.backend.put(paths.referrer_link(name, parsed.subject, digest), str(digest).encode())
        if await self._doomed(name, digest, parsed):
            # A concurrent GC run is deleting something this manifest needs. GC marks before its
            # last look at the manifests and we look for marks after writing ours, so one of the two
            # always sees the other (registry/gc.py): withdraw rather than leave a tag on a hole.
            if not existed:
                if parsed.subject is not None:
                    await self.backend.delete(paths.referrer_link(name, parsed.subject, digest).rsplit("/", 1)[0])
                await self.backend.delete(paths.manifest_revision_dir(name, digest))
            raise RegistryError(
                ErrorCode.MANIFEST_BLOB_UNKNOWN,
                detail={"digest": str(digest)},
                message="content this manifest references was being garbage collected; push it again",
            )
        for tag in all_tags:
            await self._tag(name, tag, digest)
        self._manifests.put(Manifest(digest, parsed.media_type, body))
        return PutManifestResult(digest, parsed.subject)

    def media_type(self, digest: Digest, body: bytes) -> str:
        """The media type of a manifest just stored (as it is served)."""
        cached = self._manifests.get(digest)
        return cached.media_type if cached is not None else media_type_of(body)

    async def _doomed(self, name: str, digest: Digest, parsed: ParsedManifest) -> bool:
        """Whether GC is deleting, or has just deleted, something this manifest needs."""
        if not await self.backend.list(paths.GC_DOOMED):
            return False  # no collection running: one listing is the whole cost
        manifests = (digest, *(d.digest for d in parsed.children))
        for needed in (*manifests, *(d.digest for d in parsed.blobs if must_exist(d))):
            try:
                info = await self.backend.stat(paths.gc_doomed(needed))
                state = await self.backend.get(paths.gc_doomed(needed))
            except PathNotFound:
                continue
            if time.time() - info.modified >= GC_DOOMED_TTL:
                continue
            if state.startswith(GC_PENDING):
                return True
            # "done": GC deleted it, so what exists now was written since, and stays.
            keys = [paths.blob_data(needed)]
            if needed in manifests:
                keys.append(paths.manifest_revision_link(name, needed))
            for key in keys:
                try:
                    await self.backend.stat(key)
                except PathNotFound:
                    return True
        return False

    async def _check_references(self, name: str, parsed: ParsedManifest) -> None:
        missing: list[str] = []
        checks = [d for d in parsed.blobs if must_exist(d)]
        blob_results = await asyncio.gather(*(self._blob_present(name, d.digest) for d in checks))
        missing += [str(d.digest) for d, ok in zip(checks, blob_results, strict=True) if not ok]
        child_results = await asyncio.gather(*(self._manifest_present(name, d.digest) for d in parsed.children))
        missing += [str(d.digest) for d, ok in zip(parsed.children, child_results, strict=True) if not ok]
        if missing:
            raise RegistryError(ErrorCode.MANIFEST_BLOB_UNKNOWN, detail={"missing": missing})

    async def _blob_present(self, name: str, digest: Digest) -> bool:
        if not await self._linked(name, digest):
            return False
        try:
            await self.backend.stat(paths.blob_data(digest))
        except PathNotFound:
            return False
        return True

    async def _manifest_present(self, name: str, digest: Digest) -> bool:
        try:
            await self.backend.stat(paths.manifest_revision_link(name, digest))
        except PathNotFound:
            return False
        return True

    async def _current(self, name: str, tag: str) -> Digest | None:
        try:
            return _parse_link(await self.backend.get(paths.tag_current_link(name, tag)))
        except PathNotFound:
            return None

    async def _tag(self, name: str, tag: str, digest: Digest) -> None:
        await self.backend.put(paths.tag_index_link(name, tag, digest), str(digest).encode())
        await self.backend.put(paths.tag_current_link(name, tag), str(digest).encode())

    async def delete_manifest(self, name: str, reference: str) -> list[str]:
        """Delete a tag, or a manifest with the tags naming it; returns the tags deleted."""
        self._require_delete()
        if ":" not in reference:
            await self.resolve(name, reference)
            if self.immutable is not None:
                self.immutable.check_delete(name, [reference])
            await self.backend.delete(paths.tag_dir(name, reference))
            return [reference]
        digest = await self.resolve(name, reference)
        manifest = await self.get_manifest(name, reference)
        # Tags pointing at the deleted manifest go with it, as in distribution.
        naming: list[str] = []
        for tag in await self.backend.list(paths.tags(name)):
            try:
                current = _parse_link(await self.backend.get(paths.tag_current_link(name, tag)))
            except PathNotFound:
                continue
            if current == digest:
                naming.append(tag)
        if self.immutable is not None:
            self.immutable.check_delete(name, naming)
        for tag in naming:
            await self.backend.delete(paths.tag_dir(name, tag))
        await self.backend.delete(paths.manifest_revision_dir(name, digest))
        try:
            parsed = parse_manifest(manifest.body, None)
        except ManifestError:
            return naming
        if parsed.subject is not None:
            link = paths.referrer_link(name, parsed.subject, digest)
            await self.backend.delete(link.rsplit("/", 1)[0])
        return naming

    # -- tags, catalog, referrers ----------------------------------------------------------

    async def repository_exists(self, name: str) -> bool:
        try:
            await self.backend.stat(paths.repository(name))
        except PathNotFound:
            return False
        return True

    async def tags(self, name: str, last: str | None = None, n: int | None = None) -> list[str]:
        names = await self.backend.list(paths.tags(name), after=last, limit=n)
        if not names and last is None and not await self.repository_exists(name):
            raise RegistryError(ErrorCode.NAME_UNKNOWN, detail={"name": name})
        return names

    async def repositories(self) -> list[str]:
        """Every repository name, sorted: directories below `repositories/` that hold `_` entries."""
        found: list[str] = []
        if self._tree is not None:  # one call, not one per directory
            tree = await self._tree.walk(paths.REPOSITORIES, lambda entry: not entry.startswith("_"))
            return sorted(name for name, entries in tree if any(e in _REPOSITORY_MARKS for e in entries))

        async def walk(prefix: str, name: str) -> None:
            entries = await self.backend.list(prefix)
            if any(e in _REPOSITORY_MARKS for e in entries):
                found.append(name)
            for entry in entries:
                if not entry.startswith("_"):
                    await walk(f"{prefix}/{entry}", f"{name}/{entry}" if name else entry)

        await walk(paths.REPOSITORIES, "")
        return sorted(found)

    async def catalog(self, last: str | None = None, n: int | None = None) -> list[str]:
        """Repositories after `last`. A walk's first page reads the tree; its next pages (`last` set)
        reuse that list for a few seconds unless this replica wrote since: one tree walk per
        client walk, not one per page."""
        snapshot = self._catalog_snapshot
        if (
            last is not None
            and snapshot is not None
            and snapshot[1] == self._counted.writes
            and time.monotonic() - snapshot[0] < _CATALOG_SNAPSHOT_SECONDS
        ):
            repositories = snapshot[2]
        else:
            taken, writes = time.monotonic(), self._counted.writes
            repositories = await self.repositories()
            self._catalog_snapshot = (taken, writes, repositories)
        names = repositories[bisect.bisect_right(repositories, last) :] if last is not None else repositories
        return names if n is None else names[:n]

    async def referrers(self, name: str, subject: Digest, artifact_type: str | None = None) -> list[Referrer]:
        prefix = paths.referrers(name, subject)
        found: list[Referrer] = []
        for algorithm in await self.backend.list(prefix):
            for encoded in await self.backend.list(f"{prefix}/{algorithm}"):
                try:
                    digest = Digest.parse(f"{algorithm}:{encoded}")
                    manifest = await self.get_manifest(name, str(digest))
                except (InvalidDigest, RegistryError):
                    continue
                parsed = parse_manifest(manifest.body, None)
                if artifact_type is not None and parsed.artifact_type != artifact_type:
                    continue
                found.append(
                    Referrer(parsed.media_type, digest, len(manifest.body), parsed.artifact_type, parsed.annotations)
                )
        return found

    # -- for the web UI (registry/ui) --------------------------------------------------------

    @property
    def writes(self) -> int:
        """How many writes this replica has made: what it caches about tags holds while this is unchanged."""
        return self._counted.writes

    async def tag_link(self, name: str, tag: str) -> tuple[Digest, float]:
        """The manifest a tag names and when the tag was last set (seconds since the epoch)."""
        key = paths.tag_current_link(name, tag)
        try:
            info, link = await asyncio.gather(self.backend.stat(key), self.backend.get(key))
            return _parse_link(link), info.modified
        except PathNotFound:
            raise await self._unknown_manifest(name, tag) from None

    async def tag_links(self, name: str, tags: list[str]) -> dict[str, tuple[Digest, float]]:
        """`tag_link` for many tags at once; tags that are gone (or corrupt) are left out.

        With local files (an optional backend extra) all of them are read in one thread hop:
        10,000 tags cost one hop, not 20,000."""
        tags = [tag for tag in tags if valid_tag(tag)]
        files = self._files
        if files is None:

            async def one(tag: str) -> tuple[str, tuple[Digest, float] | None]:
                try:
                    return tag, await self.tag_link(name, tag)
                except RegistryError:
                    return tag, None

            gate = asyncio.Semaphore(32)

            async def bounded(tag: str) -> tuple[str, tuple[Digest, float] | None]:
                async with gate:
                    return await one(tag)

            found = await asyncio.gather(*(bounded(tag) for tag in tags))
            return {tag: link for tag, link in found if link is not None}

        def read_all() -> dict[str, tuple[Digest, float]]:
            links: dict[str, tuple[Digest, float]] = {}
            for tag in tags:
                path = files.local_path(paths.tag_current_link(name, tag))
                try:
                    modified = os.stat(path).st_mtime
                    with open(path, "rb") as handle:
                        links[tag] = (_parse_link(handle.read()), modified)
                except (OSError, PathNotFound):
                    continue
            return links

        return await anyio.to_thread.run_sync(read_all)

    async def read_small_blob(self, name: str, digest: Digest, limit: int) -> bytes:
        """A whole blob the repository holds (an image config), refused when larger than `limit`."""
        info = await self.stat_blob(name, digest)
        if info.size > limit:
            raise RegistryError(ErrorCode.SIZE_INVALID, detail={"digest": str(digest), "limit": limit})
        return await self.backend.get(paths.blob_data(digest))

    async def blob_totals(self) -> tuple[int, int]:
        """How many blobs the store holds and their bytes: every repository's, shared ones once."""
        if self._files is not None:
            top = self._files.local_path(paths.BLOBS)

            def count_files() -> tuple[int, int]:
                count = total = 0
                for directory, _, files in os.walk(top):
                    if "data" in files:
                        try:
                            total += os.stat(os.path.join(directory, "data")).st_size
                            count += 1
                        except OSError:
                            continue
                return count, total

            return await anyio.to_thread.run_sync(count_files)
        count = total = 0
        for algorithm in await self.backend.list(paths.BLOBS):
            for prefix in await self.backend.list(f"{paths.BLOBS}/{algorithm}"):
                for encoded in await self.backend.list(f"{paths.BLOBS}/{algorithm}/{prefix}"):
                    try:
                        info = await self.backend.stat(f"{paths.BLOBS}/{algorithm}/{prefix}/{encoded}/data")
                    except PathNotFound:
                        continue
                    count, total = count + 1, total + info.size
        return count, total
