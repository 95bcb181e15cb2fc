"""`maxsize` per upstream: before garbage collection, the least recently pulled cached repositories
are dropped until what the upstream's cache holds fits; the collection that follows deletes the
blobs nothing else references (a blob a local repository also uses stays).

The unit is a repository (its manifests, tags and links): the mirror records when each cached
repository was last pulled (`dockyard/proxy/pulled/<name>/_at`, written at most once a minute per
worker). Sizes count each blob once per upstream, however many of its repositories share it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass

from oci.digest import Digest
from registry import paths
from registry.config import Config, ConfigError, ProxyConfig
from registry.links import listed_digests
from storage_backends import PathNotFound, StorageBackend

log = logging.getLogger("dockyard.proxy")

PULLED = "dockyard/proxy/pulled"
_TOUCH_EVERY = 60.0
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}


def parse_size(text: str) -> int:
    """`200GiB`, `500MB`, `1048576`: bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"invalid size {text!r}")
    unit = (match.group(2) or "").upper()
    base = 1024 if "I" in unit else 1000
    exponent = "BKMGT".index(unit[0]) if unit else 0
    return int(float(match.group(1)) * base**exponent)


def pulled_key(name: str) -> str:
    return f"{PULLED}/{name}/_at"


class PullClock:
    """Records when cached repositories were pulled, for eviction, without a write per pull."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend
        self._written: dict[str, float] = {}

    async def touch(self, name: str) -> None:
        now = time.monotonic()
        if now - self._written.get(name, -_TOUCH_EVERY) < _TOUCH_EVERY:
            return
        self._written[name] = now
        await self.backend.put(pulled_key(name), repr(time.time()).encode())


@dataclass(frozen=True)
class _Cache:
    prefix: str  # "" for the whole registry
    maxsize: int


def caches(proxy: ProxyConfig) -> list[_Cache]:
    """The caches with a size limit; a ConfigError names a bad `maxsize`."""
    limits = [("proxy.maxsize", "", proxy.maxsize)] if proxy.remoteurl else []
    limits += [(f"proxy.upstreams[{i}].maxsize", u.prefix.strip("/"), u.maxsize) for i, u in enumerate(proxy.upstreams)]
    found: list[_Cache] = []
    for where, prefix, text in limits:
        if not text:
            continue
        try:
            found.append(_Cache(prefix, parse_size(text)))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return found


async def _last_pulled(backend: StorageBackend, name: str) -> float:
    try:
        return float((await backend.get(pulled_key(name))).decode())
    except (PathNotFound, ValueError, UnicodeDecodeError):
        return 0.0  # never recorded: oldest


async def evict(backend: StorageBackend, config: Config, repositories: list[str], dry_run: bool = False) -> list[str]:
    """Drop least recently pulled cached repositories until each upstream with `maxsize` fits;
    returns the names dropped (or that would be, with `dry_run`)."""
    if config.proxy is None:
        return []
    evicted: list[str] = []
    for cache in caches(config.proxy):
        names = [r for r in repositories if not cache.prefix or r.startswith(cache.prefix + "/")]
        held: dict[str, set[Digest]] = {}
        for name in names:
            held[name] = await listed_digests(backend, paths.layers(name)) | await listed_digests(
                backend, paths.manifest_revisions(name)
            )
        sizes: dict[Digest, int] = {}
        for digest in set().union(*held.values()) if held else set():
            with contextlib.suppress(PathNotFound):
                sizes[digest] = (await backend.stat(paths.blob_data(digest))).size
        users = Counter(d for digests in held.values() for d in digests if d in sizes)
        total = sum(sizes[d] for d in users)
        pulled = {name: await _last_pulled(backend, name) for name in names}
        order = sorted(names, key=lambda n: (pulled[n], n))
        for name in order:
            if total <= cache.maxsize:
                break
            for digest in held[name]:
                if digest in users:
                    users[digest] -= 1
                    if users[digest] == 0:
                        total -= sizes[digest]
                        del users[digest]
            evicted.append(name)
            log.info("evicting cached repository %s (cache %s over its maxsize)", name, cache.prefix or "proxy")
            if not dry_run:
                for part in ("_manifests", "_layers"):
                    await backend.delete(f"{paths.repository(name)}/{part}")
                await backend.delete(f"{PULLED}/{name}/_at")
    return evicted
