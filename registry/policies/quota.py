"""Quotas: the bytes a namespace (or a repository glob) stores, counted from the store itself.

Usage is the size of every distinct blob and manifest the covered repositories link, so a layer
shared by ten repositories of a namespace counts once. It is computed from the links, which every
replica sees alike, and is therefore right across replicas and after GC without a counter to keep
in step; each computation is also written to `dockyard/quota/<limit>.json` for `dockyard quota`,
the metrics and the UI. A replica reuses its last computation for a second or two (and drops it
when it commits a blob itself): two replicas racing inside that window may overshoot by one upload.
A chunked upload names its digest only at its last request, so its chunks are let in while they
could still be a blob the quota's repositories hold, and the final check decides (`Quotas.check`).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import orjson

from oci.digest import Digest
from registry import paths
from registry.errors import ErrorCode, RegistryError
from registry.links import listed_digests
from registry.policies.config import QuotaLimitConfig, QuotasConfig, glob_matches
from storage_backends import PathNotFound, StorageBackend

QUOTA_PREFIX = "dockyard/quota"
_REUSE_SECONDS = 2.0
_MARKS = ("_manifests", "_layers", "_uploads")


def usage_key(limit: QuotaLimitConfig) -> str:
    """`ns:team` → `dockyard/quota/ns_3ateam.json`: storage keys allow only [A-Za-z0-9._-], so any
    other character of the limit's key (and `_` itself) is written as `_` and two hex digits."""
    label = re.sub(r"[^A-Za-z0-9.-]", lambda m: f"_{ord(m.group(0)):02x}", limit.key)
    return f"{QUOTA_PREFIX}/{label}.json"


@dataclass(frozen=True)
class Usage:
    limit: QuotaLimitConfig
    used: int
    sizes: Mapping[Digest, int]  # each distinct blob counted, and its size
    computed: float
    largest: int = 0  # the size of the largest of them

    def could_be_held(self, size: int) -> bool:
        """Whether an upload of `size` bytes so far, digest unknown, may still turn out to be a
        blob these repositories hold (which costs nothing)."""
        return size <= self.largest


async def _repositories(backend: StorageBackend, top: str, name: str) -> list[str]:
    found: list[str] = []
    entries = await backend.list(top)
    if any(e in _MARKS for e in entries):
        found.append(name)
    for entry in entries:
        if not entry.startswith("_"):
            found += await _repositories(backend, f"{top}/{entry}", f"{name}/{entry}" if name else entry)
    return found


async def covered_repositories(backend: StorageBackend, limit: QuotaLimitConfig) -> list[str]:
    if limit.namespace:
        return await _repositories(backend, paths.repository(limit.namespace), limit.namespace)
    return [n for n in await _repositories(backend, paths.REPOSITORIES, "") if glob_matches(limit.repositories, n)]


async def compute_usage(backend: StorageBackend, limit: QuotaLimitConfig) -> Usage:
    """Walk the covered repositories' links and add up each distinct blob once; record the result."""
    held: set[Digest] = set()
    for name in await covered_repositories(backend, limit):
        held |= await listed_digests(backend, paths.layers(name))
        held |= await listed_digests(backend, paths.manifest_revisions(name))
    sizes: dict[Digest, int] = {}
    for digest in held:
        with contextlib.suppress(PathNotFound):
            sizes[digest] = (await backend.stat(paths.blob_data(digest))).size
    used = sum(sizes.values())
    usage = Usage(limit, used, sizes, time.time(), max(sizes.values(), default=0))
    record = {"limit": limit.key, "maxbytes": limit.bytes, "usedbytes": used, "computed": usage.computed}
    await backend.put(usage_key(limit), orjson.dumps(record))
    return usage


async def recorded_usage(backend: StorageBackend, limit: QuotaLimitConfig) -> int | None:
    try:
        return int(orjson.loads(await backend.get(usage_key(limit)))["usedbytes"])
    except (PathNotFound, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def exceeded(limit: QuotaLimitConfig, used: int, adding: int) -> RegistryError:
    return RegistryError(
        ErrorCode.DENIED,
        detail={"quota": limit.key, "maxbytes": limit.bytes, "usedbytes": used, "adding": adding},
        message=f"quota exceeded: {limit.key} allows {limit.bytes} bytes, {used} are stored, this upload adds {adding}",
        policy="quota",
    )


class Quotas:
    """The checks the upload service calls before it stores bytes (registry/uploads.py)."""

    def __init__(
        self,
        config: QuotasConfig,
        backend: StorageBackend,
        observe: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self._cache: dict[str, Usage] = {}
        self._observe = observe

    async def _usage(self, limit: QuotaLimitConfig) -> Usage:
        cached = self._cache.get(limit.key)
        if cached is not None and time.time() - cached.computed < _REUSE_SECONDS:
            return cached
        usage = self._cache[limit.key] = await compute_usage(self.backend, limit)
        if self._observe is not None:
            self._observe(limit.key, limit.bytes, usage.used)
        return usage

    async def refresh(self) -> list[Usage]:
        """Recompute every quota's usage from the store (at start, after GC)."""
        self._cache.clear()
        return await self.current()

    async def current(self) -> list[Usage]:
        """Every quota's usage, as computed at most a couple of seconds ago (for a metrics scrape:
        other replicas and `dockyard gc` change it too)."""
        return [await self._usage(limit) for limit in self.config.limits]

    def _limits(self, name: str) -> Iterable[QuotaLimitConfig]:
        return self.config.limits_for(name)

    async def check(self, name: str, adding: int, digest: Digest | None = None, verified: bool = True) -> None:
        """Refuse (403 DENIED) when storing `adding` more bytes in `name` would exceed a quota;
        a blob (`digest`) the covered repositories already hold adds nothing.

        While an upload's bytes arrive (`verified` False), `digest` is only what the client claims,
        or None for a chunk of a chunked upload (PATCH), whose digest comes with the final PUT. Such
        an upload may grow to the size of the held blob it claims to be, or with no claim to the
        size of the largest held blob, and no further: it is checked again once its digest is
        known, and refused then (its upload removed) unless it is a held blob after all. So the
        same layer pushed in chunks to a second repository is not refused for its length, and an
        upload that is not held stages at most that many bytes before it is refused."""
        for limit in self._limits(name):
            usage = await self._usage(limit)
            if not verified and digest is None and usage.could_be_held(adding):
                continue
            held = usage.sizes.get(digest) if digest is not None else None
            if held is not None and (verified or adding <= held):
                continue
            if usage.used + adding > limit.bytes:
                raise exceeded(limit, usage.used, adding)

    def stored(self, name: str) -> None:
        """This replica committed something in `name`: its cached usage is stale."""
        for limit in self._limits(name):
            self._cache.pop(limit.key, None)
