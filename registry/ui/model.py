"""What the pages show, read through the `Store` (the API's own code path to storage).

Manifest and config bodies never change for a digest, so what is derived from them (sizes,
platforms, created times, the blobs an image uses) is cached by digest for as long as memory
allows. Tags do change: which digest a tag names, and when it was set, is remembered per
repository only while this replica has written nothing and for a few seconds (other replicas may
write), and only for the tags a page shows, so a repository of 10,000 tags costs one listing and
one page of lookups, not 10,000.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

from oci import mediatypes as mt
from oci.digest import Digest
from registry.errors import RegistryError
from registry.gc_record import LastRun, last_run
from registry.store import Store
from storage_backends import PathNotFound

# How long what this replica read about tags holds when it has not written since.
TAG_LINK_SECONDS = 5.0
# Repositories with more tags than this show their tag count on the home page, but not their
# total size and last push (those need every tag resolved; the repository page pages them).
SUMMARY_TAG_LIMIT = 1000
MAX_CONFIG_BYTES = 4 * 1024 * 1024
BLOB_TOTALS_SECONDS = 60.0
_LOOKUPS_AT_ONCE = 32

K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._limit = limit

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)


@dataclass(frozen=True)
class Layer:
    digest: Digest
    media_type: str
    size: int
    created_by: str | None = None


@dataclass(frozen=True)
class HistoryStep:
    created: str | None
    created_by: str
    empty: bool
    size: int | None


@dataclass(frozen=True)
class Child:
    digest: Digest
    media_type: str
    size: int
    platform: str | None
    artifact_type: str | None


@dataclass(frozen=True)
class ImageSummary:
    """What one manifest amounts to: immutable, so cached by digest."""

    digest: Digest
    media_type: str
    kind: str  # "image", "index" or "artifact"
    size: int  # compressed bytes, as a registry stores them: config, layers (and children)
    platforms: tuple[str, ...]
    created: str | None
    sizes: tuple[tuple[Digest, int], ...]  # every blob and child manifest it needs, with its size
    artifact_type: str | None = None

    @property
    def blobs(self) -> frozenset[Digest]:
        return frozenset(digest for digest, _ in self.sizes)


# What a referrer is, by its artifactType, in the words the tag table uses.
REFERRER_KINDS = {
    "application/vnd.dev.cosign.artifact.sig.v1+json": "signature",
    "application/vnd.cncf.notary.signature": "signature",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "signature",
    "application/spdx+json": "SBOM",
    "text/spdx": "SBOM",
    "application/vnd.cyclonedx+json": "SBOM",
    "application/vnd.in-toto+json": "attestation",
}


def referrer_kind(artifact_type: str | None) -> str:
    return REFERRER_KINDS.get(artifact_type or "", "other")


@dataclass(frozen=True)
class TagRow:
    tag: str
    digest: Digest
    pushed: float
    summary: ImageSummary | None
    referrers: tuple[str, ...] = ()  # kinds of what refers to the manifest: signature, SBOM, ...


@dataclass(frozen=True)
class RepositoryRow:
    name: str
    tags: int
    pushed: float | None
    size: int | None


@dataclass
class ManifestDetail:
    digest: Digest
    media_type: str
    raw: str
    summary: ImageSummary
    children: list[Child] = field(default_factory=list)
    config_digest: Digest | None = None
    config: dict[str, Any] = field(default_factory=dict)
    config_raw: str | None = None
    layers: list[Layer] = field(default_factory=list)
    history: list[HistoryStep] = field(default_factory=list)
    referrers: dict[str, list[Child]] = field(default_factory=dict)
    subject: Digest | None = None
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeletePlan:
    """What a delete removes, and what it leaves because something else still needs it."""

    reference: str
    digest: Digest
    by_tag: bool
    tags_removed: tuple[str, ...]
    tags_kept: tuple[str, ...]  # other tags still naming the manifest (a tag delete only)
    blobs_shared: tuple[Digest, ...]  # blobs of the manifest other tagged manifests here also use
    blobs_unshared: tuple[Digest, ...]


@dataclass
class _TagLinks:
    writes: int
    links: dict[str, tuple[Digest, float, float]] = field(default_factory=dict)  # digest, pushed, read at


def _document(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _descriptors(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [d for d in value if isinstance(d, dict) and isinstance(d.get("digest"), str)]


def _digest(text: Any) -> Digest | None:
    try:
        return Digest.parse(str(text))
    except ValueError:
        return None


def _size(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _platform(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    os_name, arch = str(value.get("os", "")), str(value.get("architecture", ""))
    if not os_name or not arch or (os_name, arch) == ("unknown", "unknown"):
        return None
    variant = value.get("variant")
    return f"{os_name}/{arch}" + (f"/{variant}" if variant else "")


def _pretty(body: bytes) -> str:
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")


async def _bounded(calls: Iterable[Callable[[], Awaitable[V]]]) -> list[V]:
    gate = asyncio.Semaphore(_LOOKUPS_AT_ONCE)

    async def run(call: Callable[[], Awaitable[V]]) -> V:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(run(c) for c in calls)))


class UiModel:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._summaries: _Lru[Digest, ImageSummary] = _Lru(50_000)
        self._configs: _Lru[Digest, tuple[dict[str, Any], str]] = _Lru(2_000)
        self._tag_links: dict[str, _TagLinks] = {}
        self._repositories: tuple[int, float, list[str]] | None = None
        self._blob_totals: tuple[float, tuple[int, int]] | None = None
        self._referrer_kinds: dict[tuple[str, Digest], tuple[int, float, tuple[str, ...]]] = {}

    # -- immutable, by digest ----------------------------------------------------------------

    async def config(self, name: str, digest: Digest) -> tuple[dict[str, Any], str]:
        """An image config, parsed, and its pretty-printed JSON."""
        cached = self._configs.get(digest)
        if cached is None:
            body = await self.store.read_small_blob(name, digest, MAX_CONFIG_BYTES)
            cached = (_document(body), _pretty(body))
            self._configs.put(digest, cached)
        return cached

    async def summary(self, name: str, digest: Digest) -> ImageSummary:
        cached = self._summaries.get(digest)
        if cached is not None:
            return cached
        manifest = await self.store.get_manifest(name, str(digest))
        document = _document(manifest.body)
        media_type = manifest.media_type
        if media_type in mt.INDEXES:
            summary = await self._index_summary(name, digest, media_type, document)
        else:
            summary = await self._image_summary(name, digest, media_type, document)
        self._summaries.put(digest, summary)
        return summary

    async def _image_summary(self, name: str, digest: Digest, media_type: str, doc: dict[str, Any]) -> ImageSummary:
        config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
        assert isinstance(config, dict)
        layers = _descriptors(doc.get("layers"))
        sizes: dict[Digest, int] = {}
        for entry in [config, *layers]:
            blob = _digest(entry.get("digest"))
            if blob is not None:
                sizes[blob] = _size(entry.get("size"))
        config_type = str(config.get("mediaType", ""))
        artifact_type = doc.get("artifactType") if isinstance(doc.get("artifactType"), str) else None
        is_image = config_type in (mt.OCI_CONFIG, mt.DOCKER_CONFIG) and artifact_type is None
        created: str | None = None
        platforms: tuple[str, ...] = ()
        config_digest = _digest(config.get("digest"))
        if is_image and config_digest is not None:
            try:
                data, _ = await self.config(name, config_digest)
            except (RegistryError, PathNotFound):
                data = {}
            created = data.get("created") if isinstance(data.get("created"), str) else None
            platform = _platform(data)
            platforms = (platform,) if platform else ()
        return ImageSummary(
            digest,
            media_type,
            "image" if is_image else "artifact",
            sum(sizes.values()),
            platforms,
            created,
            tuple(sizes.items()),
            artifact_type or (None if is_image else config_type or None),
        )

    async def _index_summary(self, name: str, digest: Digest, media_type: str, doc: dict[str, Any]) -> ImageSummary:
        entries = _descriptors(doc.get("manifests"))
        platforms = tuple(p for p in (_platform(e.get("platform")) for e in entries) if p)
        sizes: dict[Digest, int] = {}
        created: str | None = None
        for entry in entries:
            child = _digest(entry["digest"])
            if child is None:
                continue
            sizes[child] = _size(entry.get("size"))
            try:
                inner = await self.summary(name, child)
            except (RegistryError, PathNotFound):
                continue
            sizes.update(inner.sizes)
            if inner.kind == "image" and inner.created and (created is None or inner.created > created):
                created = inner.created
        return ImageSummary(digest, media_type, "index", sum(sizes.values()), platforms, created, tuple(sizes.items()))

    async def detail(self, name: str, reference: str) -> ManifestDetail:
        manifest = await self.store.get_manifest(name, reference)
        doc = _document(manifest.body)
        summary = await self.summary(name, manifest.digest)
        detail = ManifestDetail(manifest.digest, manifest.media_type, _pretty(manifest.body), summary)
        annotations = doc.get("annotations")
        if isinstance(annotations, dict):
            detail.annotations = {str(k): str(v) for k, v in annotations.items()}
        subject = doc.get("subject")
        if isinstance(subject, dict):
            detail.subject = _digest(subject.get("digest"))
        if manifest.media_type in mt.INDEXES:
            for entry in _descriptors(doc.get("manifests")):
                child = _digest(entry["digest"])
                if child is not None:
                    artifact = entry.get("artifactType") if isinstance(entry.get("artifactType"), str) else None
                    marks = entry.get("annotations")
                    # Docker's build attestations mark themselves with an annotation, not an artifactType.
                    if artifact is None and isinstance(marks, dict) and marks.get("vnd.docker.reference.type"):
                        artifact = str(marks["vnd.docker.reference.type"])
                    detail.children.append(
                        Child(
                            child,
                            str(entry.get("mediaType", "")),
                            _size(entry.get("size")),
                            _platform(entry.get("platform")),
                            artifact,
                        )
                    )
        else:
            await self._fill_image(name, doc, detail)
        for referrer in await self.store.referrers(name, manifest.digest):
            group = referrer.artifact_type or "unknown"
            detail.referrers.setdefault(group, []).append(
                Child(referrer.digest, referrer.media_type, referrer.size, None, referrer.artifact_type)
            )
        return detail

    async def _fill_image(self, name: str, doc: dict[str, Any], detail: ManifestDetail) -> None:
        config = doc.get("config")
        layers = _descriptors(doc.get("layers"))
        history: list[dict[str, Any]] = []
        if isinstance(config, dict):
            detail.config_digest = _digest(config.get("digest"))
        if detail.config_digest is not None and detail.summary.kind == "image":
            try:
                detail.config, detail.config_raw = await self.config(name, detail.config_digest)
            except (RegistryError, PathNotFound):
                pass
            raw_history = detail.config.get("history")
            history = [h for h in raw_history if isinstance(h, dict)] if isinstance(raw_history, list) else []
        # History entries without `empty_layer` made the layers, in order (docker history's pairing).
        made_by = [h for h in history if not h.get("empty_layer")]
        for i, entry in enumerate(layers):
            digest = _digest(entry["digest"])
            if digest is None:
                continue
            step = made_by[i] if i < len(made_by) else {}
            created_by = step.get("created_by") if isinstance(step.get("created_by"), str) else None
            detail.layers.append(Layer(digest, str(entry.get("mediaType", "")), _size(entry.get("size")), created_by))
        layer_sizes = iter(layer.size for layer in detail.layers)
        for h in history:
            empty = bool(h.get("empty_layer"))
            detail.history.append(
                HistoryStep(
                    h.get("created") if isinstance(h.get("created"), str) else None,
                    str(h.get("created_by") or h.get("comment") or ""),
                    empty,
                    None if empty else next(layer_sizes, None),
                )
            )

    # -- tags: mutable, looked up per page ----------------------------------------------------

    def _links_for(self, name: str) -> _TagLinks:
        held = self._tag_links.get(name)
        if held is None or held.writes != self.store.writes:
            held = _TagLinks(self.store.writes)
            if len(self._tag_links) > 1000:
                self._tag_links.clear()
            self._tag_links[name] = held
        return held

    async def tag_links(self, name: str, tags: list[str]) -> dict[str, tuple[Digest, float]]:
        """Digest and push time of each tag (tags deleted meanwhile are left out)."""
        held = self._links_for(name)
        now = time.monotonic()
        missing = [t for t in tags if t not in held.links or now - held.links[t][2] > TAG_LINK_SECONDS]
        if missing:
            fetched = await self.store.tag_links(name, missing)
            now = time.monotonic()
            for tag in missing:
                if tag in fetched:
                    held.links[tag] = (*fetched[tag], now)
                else:
                    held.links.pop(tag, None)
        return {t: held.links[t][:2] for t in tags if t in held.links}

    async def referrer_kinds(self, name: str, digest: Digest) -> tuple[str, ...]:
        """The kinds of referrers a manifest has (mutable: remembered like tag links)."""
        key = (name, digest)
        held = self._referrer_kinds.get(key)
        now = time.monotonic()
        if held is not None and held[0] == self.store.writes and now - held[1] <= TAG_LINK_SECONDS:
            return held[2]
        writes = self.store.writes
        try:
            found = await self.store.referrers(name, digest)
        except (RegistryError, PathNotFound):
            found = []
        kinds = tuple(sorted({referrer_kind(r.artifact_type) for r in found}))
        if len(self._referrer_kinds) > 50_000:
            self._referrer_kinds.clear()
        self._referrer_kinds[key] = (writes, time.monotonic(), kinds)
        return kinds

    async def tag_rows(self, name: str, tags: list[str]) -> list[TagRow]:
        links = await self.tag_links(name, tags)
        digests = sorted({digest for digest, _ in links.values()}, key=str)
        kinds = dict(
            zip(
                digests,
                await _bounded([lambda d=d: self.referrer_kinds(name, d) for d in digests]),  # type: ignore[misc]
                strict=True,
            )
        )

        async def row(tag: str) -> TagRow:
            digest, pushed = links[tag]
            try:
                summary: ImageSummary | None = await self.summary(name, digest)
            except (RegistryError, PathNotFound):
                summary = None
            return TagRow(tag, digest, pushed, summary, kinds.get(digest, ()))

        return await _bounded([lambda t=t: row(t) for t in tags if t in links])  # type: ignore[misc]

    async def blob_totals(self) -> tuple[int, int]:
        """Blobs stored and their bytes; a walk of every blob, so done at most once a minute."""
        held = self._blob_totals
        if held is None or time.monotonic() - held[0] > BLOB_TOTALS_SECONDS:
            held = (time.monotonic(), await self.store.blob_totals())
            self._blob_totals = held
        return held[1]

    async def last_gc(self) -> LastRun | None:
        """The last garbage collection's record (one small read, so never stale)."""
        return await last_run(self.store.backend)

    async def repositories(self) -> list[str]:
        """Every repository, sorted; one walk of the tree serves the pages of the next few seconds."""
        held = self._repositories
        now = time.monotonic()
        if held is None or held[0] != self.store.writes or now - held[1] > TAG_LINK_SECONDS:
            writes = self.store.writes
            names = await self.store.catalog()
            held = (writes, time.monotonic(), names)
            self._repositories = held
        return held[2]

    async def repository_rows(self, names: list[str]) -> list[RepositoryRow]:
        """A row for each repository (ones deleted meanwhile are left out)."""

        async def row(name: str) -> RepositoryRow | None:
            try:
                return await self.repository_row(name)
            except RegistryError:
                return None

        rows = await _bounded([lambda n=n: row(n) for n in names])  # type: ignore[misc]
        return [r for r in rows if r is not None]

    async def repository_row(self, name: str) -> RepositoryRow:
        tags = await self.store.tags(name)
        if len(tags) > SUMMARY_TAG_LIMIT:
            return RepositoryRow(name, len(tags), None, None)
        rows = await self.tag_rows(name, tags)
        blobs: dict[Digest, int] = {}
        for row in rows:
            if row.summary is not None:
                blobs.update(row.summary.sizes)
        pushed = max((row.pushed for row in rows), default=None)
        return RepositoryRow(name, len(tags), pushed, sum(blobs.values()) if rows else 0)

    async def delete_plan(self, name: str, reference: str) -> DeletePlan:
        by_tag = ":" not in reference
        digest = await self.store.resolve(name, reference)
        summary = await self.summary(name, digest)
        tags = await self.store.tags(name)
        links = await self.tag_links(name, tags)
        naming = sorted(t for t, (d, _) in links.items() if d == digest)
        removed: tuple[str, ...] = (reference,) if by_tag else tuple(naming)
        kept: tuple[str, ...] = tuple(t for t in naming if t != reference) if by_tag else ()
        # Blobs this manifest uses that another tagged manifest here uses too stay in any case.
        others: set[Digest] = set()
        for other in {d for d, _ in links.values() if d != digest}:
            try:
                others |= (await self.summary(name, other)).blobs
            except (RegistryError, PathNotFound):
                continue
        own = sorted(summary.blobs, key=str)
        shared = tuple(b for b in own if b in others)
        unshared = tuple(b for b in own if b not in others)
        return DeletePlan(reference, digest, by_tag, removed, kept, shared, unshared)
